#pragma once
#include <curl/curl.h>

// curl_easy_setopt/getinfo are variadic, which Swift cannot call: one typed wrapper per
// argument kind the project uses.
static inline CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*ccurl_data_cb)(char *, size_t, size_t, void *);
static inline CURLcode ccurl_setopt_readfunction(CURL *h, ccurl_data_cb cb) { return curl_easy_setopt(h, CURLOPT_READFUNCTION, cb); }
static inline CURLcode ccurl_setopt_writefunction(CURL *h, ccurl_data_cb cb) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb); }
static inline CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline long ccurl_global_default(void) { return CURL_GLOBAL_DEFAULT; }

// Trust exactly the certificates in `cafile`. Debian's libcurl also loads its built-in CA
// directory (/etc/ssl/certs) unless CURLOPT_CAPATH is set to NULL, which would let any
// public CA vouch for the peer.
static inline CURLcode ccurl_trust_only(CURL *h, const char *cafile) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(h, CURLOPT_CAPATH, (char *)0);
}
// The peer's certificate chain (CURLOPT_CERTINFO must be on): per certificate, "Name:value"
// entries, "Cert:" holding the PEM.
static inline CURLcode ccurl_getinfo_certinfo(CURL *h, struct curl_certinfo **v) { return curl_easy_getinfo(h, CURLINFO_CERTINFO, v); }
