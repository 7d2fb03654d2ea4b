#pragma once
// Ed25519 and SHA-256 from OpenSSL's libcrypto (libssl is not needed for signing), and
// X.509 parsing for TLS public-key pins.
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
