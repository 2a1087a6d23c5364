/*
 * keyring.c - AES-GCM sealing compatible with memberlist's keyring (see keyring.h).
 * memberlist picks AES-128/192/256 from the key length and uses a 12-byte random nonce
 * and the standard 16-byte tag; version 1 seals the plaintext as is, version 0 pads it
 * with PKCS7 to the block size first.
 */
#include "gossip/keyring.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/err.h"
#include "util/util.h"

#define NONCE 12
#define TAG 16

int gossip_key_from_base64(const char *b64, struct gossip_key *out)
{
    uint8_t tmp[64];
    size_t len = strlen(b64);
    int n;

    if (len == 0 || len > 64 || len % 4 != 0)
        return -CV_EINVAL;
    n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -CV_EINVAL;
    /* EVP_DecodeBlock counts the padding bytes as output; remove them. */
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    if (n != 16 && n != 24 && n != 32)
        return -CV_EINVAL;
    memset(out, 0, sizeof(*out));
    memcpy(out->k, tmp, (size_t)n);
    out->len = (uint8_t)n;
    return 0;
}

void gossip_key_to_base64(const struct gossip_key *key, char *out, size_t outsz)
{
    char tmp[64];
    EVP_EncodeBlock((unsigned char *)tmp, key->k, key->len);
    snprintf(out, outsz, "%s", tmp);
}

void gossip_keyring_init(struct gossip_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
}

static bool key_eq(const struct gossip_key *a, const struct gossip_key *b)
{
    return a->len == b->len && memcmp(a->k, b->k, a->len) == 0;
}

static int find(const struct gossip_keyring *kr, const struct gossip_key *key)
{
    for (size_t i = 0; i < kr->n; i++)
        if (key_eq(&kr->keys[i], key))
            return (int)i;
    return -1;
}

int gossip_keyring_add(struct gossip_keyring *kr, const struct gossip_key *key)
{
    if (key->len != 16 && key->len != 24 && key->len != 32)
        return -CV_EINVAL;
    if (find(kr, key) >= 0)
        return 0;
    if (kr->n == GOSSIP_KEYRING_MAX)
        return -CV_ETOOBIG;
    kr->keys[kr->n++] = *key;
    return 0;
}

int gossip_keyring_use(struct gossip_keyring *kr, const struct gossip_key *key)
{
    int i = find(kr, key);
    struct gossip_key k;

    if (i < 0)
        return -CV_ENOTFOUND;
    k = kr->keys[i];
    memmove(&kr->keys[1], &kr->keys[0], (size_t)i * sizeof(k));
    kr->keys[0] = k;
    return 0;
}

int gossip_keyring_remove(struct gossip_keyring *kr, const struct gossip_key *key)
{
    int i = find(kr, key);

    if (i < 0)
        return -CV_ENOTFOUND;
    if (i == 0)
        return -CV_EINVAL;
    memmove(&kr->keys[i], &kr->keys[i + 1], (kr->n - (size_t)i - 1) * sizeof(kr->keys[0]));
    kr->n--;
    return 0;
}

static const EVP_CIPHER *cipher_for(const struct gossip_key *key)
{
    switch (key->len) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    default: return EVP_aes_256_gcm();
    }
}

int gossip_encrypt_nonce(const struct gossip_key *key, int version, const uint8_t nonce[12],
                         const uint8_t *aad, size_t aadn, const uint8_t *p, size_t n,
                         struct buf *out)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t *pt = (uint8_t *)p, *dst;
    size_t ptn = n, start;
    int l = 0, rc = -CV_EIO;

    if (version != 0 && version != 1)
        return -CV_EINVAL;
    if (version == 0) { /* PKCS7 */
        size_t pad = 16 - n % 16;
        ptn = n + pad;
        pt = xmalloc(ptn);
        memcpy(pt, p, n);
        memset(pt + n, (int)pad, pad);
    }
    start = out->len;
    {
        uint8_t hdr[1 + NONCE];
        hdr[0] = (uint8_t)version;
        memcpy(hdr + 1, nonce, NONCE);
        buf_append(out, hdr, sizeof(hdr));
    }
    /* reserve room for the ciphertext and tag */
    buf_append(out, pt, ptn);
    buf_append(out, "0123456789abcdef", TAG);
    dst = (uint8_t *)out->data + start + 1 + NONCE;

    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        goto err;
    if (EVP_EncryptInit_ex(ctx, cipher_for(key), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key->k, nonce) != 1)
        goto err_ctx;
    if (aadn && EVP_EncryptUpdate(ctx, NULL, &l, aad, (int)aadn) != 1)
        goto err_ctx;
    if (EVP_EncryptUpdate(ctx, dst, &l, dst, (int)ptn) != 1 ||
        EVP_EncryptFinal_ex(ctx, dst + l, &l) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, dst + ptn) != 1)
        goto err_ctx;
    rc = 0;
err_ctx:
    EVP_CIPHER_CTX_free(ctx);
err:
    if (rc)
        out->len = start;
    if (pt != p)
        free(pt);
    return rc;
}

int gossip_encrypt(const struct gossip_keyring *kr, const uint8_t *aad, size_t aadn,
                   const uint8_t *p, size_t n, struct buf *out)
{
    uint8_t nonce[NONCE];

    if (kr->n == 0)
        return -CV_EINVAL;
    if (RAND_bytes(nonce, NONCE) != 1)
        return -CV_EIO;
    return gossip_encrypt_nonce(&kr->keys[0], 1, nonce, aad, aadn, p, n, out);
}

/* Tries one key; appends the plaintext on success. */
static int open_one(const struct gossip_key *key, const uint8_t *aad, size_t aadn,
                    const uint8_t *p, size_t n, struct buf *out)
{
    EVP_CIPHER_CTX *ctx;
    const uint8_t *nonce = p + 1, *ct = p + 1 + NONCE;
    size_t ctn = n - 1 - NONCE - TAG, start = out->len;
    uint8_t tag[TAG];
    uint8_t *dst;
    int l = 0, ok = 0;

    memcpy(tag, p + n - TAG, TAG);
    buf_append(out, ct, ctn); /* room for the plaintext */
    dst = (uint8_t *)out->data + start;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        goto done;
    if (EVP_DecryptInit_ex(ctx, cipher_for(key), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) == 1 &&
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->k, nonce) == 1 &&
        (aadn == 0 || EVP_DecryptUpdate(ctx, NULL, &l, aad, (int)aadn) == 1) &&
        EVP_DecryptUpdate(ctx, dst, &l, ct, (int)ctn) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1 &&
        EVP_DecryptFinal_ex(ctx, dst + l, &l) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
done:
    if (!ok)
        out->len = start;
    return ok ? 0 : -CV_EPERM;
}

int gossip_decrypt(const struct gossip_keyring *kr, const uint8_t *aad, size_t aadn,
                   const uint8_t *p, size_t n, struct buf *out)
{
    size_t start = out->len;

    if (n < 1 + NONCE + TAG || (p[0] != 0 && p[0] != 1))
        return -CV_EMALFORMED;
    for (size_t i = 0; i < kr->n; i++) {
        if (open_one(&kr->keys[i], aad, aadn, p, n, out) != 0)
            continue;
        if (p[0] == 0) { /* strip PKCS7 */
            size_t ptn = out->len - start;
            uint8_t pad = ptn ? (uint8_t)out->data[out->len - 1] : 0;
            if (pad == 0 || pad > 16 || pad > ptn) {
                out->len = start;
                return -CV_EMALFORMED;
            }
            out->len -= pad;
        }
        return 0;
    }
    return -CV_EPERM;
}

int gossip_stream_encrypt(const struct gossip_keyring *kr, const uint8_t *p, size_t n,
                          struct buf *out)
{
    uint32_t bl = (uint32_t)(n + GOSSIP_ENC_OVERHEAD);
    uint8_t hdr[5] = {10, (uint8_t)(bl >> 24), (uint8_t)(bl >> 16), (uint8_t)(bl >> 8),
                      (uint8_t)bl};
    size_t start = out->len;
    int rc;

    buf_append(out, hdr, 5);
    rc = gossip_encrypt(kr, hdr, 5, p, n, out);
    if (rc)
        out->len = start;
    return rc;
}

int gossip_stream_decrypt(const struct gossip_keyring *kr, const uint8_t *p, size_t n,
                          struct buf *out)
{
    uint32_t bl;

    if (n < 5 || p[0] != 10)
        return -CV_EMALFORMED;
    bl = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if ((size_t)bl != n - 5)
        return -CV_EMALFORMED;
    return gossip_decrypt(kr, p, 5, p + 5, bl, out);
}
