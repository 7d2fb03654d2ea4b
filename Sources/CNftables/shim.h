#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <nftables/libnftables.h>
