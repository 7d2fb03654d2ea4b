#pragma once
// Ed25519 and SHA-256 from OpenSSL's libcrypto (libssl is not needed for signing).
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
