/*
 * keyring.h - memberlist-compatible AES-GCM encryption (security.go, keyring.go 0.2.2).
 *
 *   UDP packet, version 1 (what serf 0.9.4 sends), no AAD:
 *   +------+-----------+-----------------------+----------+
 *   | 0x01 | nonce(12) | ciphertext (= len(pt))| tag (16) |   overhead 29 bytes
 *   +------+-----------+-----------------------+----------+
 *   version 0: the plaintext is PKCS7-padded to a multiple of 16 before sealing.
 *
 *   TCP stream: 0x0a | len u32be | <the blob above>; AAD = those first 5 bytes.
 *
 * Keys are 16, 24 or 32 bytes (AES-128/192/256). keys[0] is the primary and encrypts;
 * decryption tries every key in order. Uses OpenSSL libcrypto.
 */
#ifndef CARAVAN_GOSSIP_KEYRING_H
#define CARAVAN_GOSSIP_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define GOSSIP_KEYRING_MAX 16
#define GOSSIP_ENC_OVERHEAD 29 /* version + nonce + tag */

struct gossip_key {
    uint8_t k[32];
    uint8_t len; /* 16, 24 or 32 */
};

struct gossip_keyring {
    struct gossip_key keys[GOSSIP_KEYRING_MAX]; /* keys[0] is primary */
    size_t n;
};

/* Decodes standard base64 into a key; returns 0 or -CV_EINVAL (bad base64 or size). */
int gossip_key_from_base64(const char *b64, struct gossip_key *out);
/* Writes the standard base64 of key into out (at least 45 bytes). */
void gossip_key_to_base64(const struct gossip_key *key, char *out, size_t outsz);

void gossip_keyring_init(struct gossip_keyring *kr);
/* Adds a key (no-op if present); primary if it is the first. 0, -CV_EINVAL, -CV_ETOOBIG. */
int gossip_keyring_add(struct gossip_keyring *kr, const struct gossip_key *key);
/* Makes an installed key primary; -CV_ENOTFOUND if absent. */
int gossip_keyring_use(struct gossip_keyring *kr, const struct gossip_key *key);
/* Removes a non-primary key; -CV_EINVAL for the primary, -CV_ENOTFOUND if absent. */
int gossip_keyring_remove(struct gossip_keyring *kr, const struct gossip_key *key);

/* Encrypts (p, n) with the primary key (version 1, random nonce) and appends the blob to
 * out; aad may be NULL. Returns 0 or -CV_EINVAL if the keyring is empty. */
int gossip_encrypt(const struct gossip_keyring *kr, const uint8_t *aad, size_t aadn,
                   const uint8_t *p, size_t n, struct buf *out);
/* Same with a caller-chosen nonce and version (0 or 1): for tests and golden vectors. */
int gossip_encrypt_nonce(const struct gossip_key *key, int version, const uint8_t nonce[12],
                         const uint8_t *aad, size_t aadn, const uint8_t *p, size_t n,
                         struct buf *out);
/* Decrypts a blob (version byte first) with any key; appends the plaintext to out.
 * Returns 0, or -CV_EMALFORMED (too short, bad version or padding) or -CV_EPERM (no
 * installed key could decrypt it). */
int gossip_decrypt(const struct gossip_keyring *kr, const uint8_t *aad, size_t aadn,
                   const uint8_t *p, size_t n, struct buf *out);

/* TCP: wraps (p, n) as 0x0a + len + blob (AAD = the 5-byte header); unwraps a complete
 * such frame (use gossip_stream_complete to find its end). */
int gossip_stream_encrypt(const struct gossip_keyring *kr, const uint8_t *p, size_t n,
                          struct buf *out);
int gossip_stream_decrypt(const struct gossip_keyring *kr, const uint8_t *p, size_t n,
                          struct buf *out);

#endif
