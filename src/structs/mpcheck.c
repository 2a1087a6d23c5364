/*
 * mpcheck.c - see mpcheck.h. Walks the object iteratively: `pending` counts the objects
 * still to be read; a container adds its elements to it.
 */
#include "structs/mpcheck.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int mp_check(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pos >= len)
            return -1;
        unsigned char b = p[pos++];
        pending--;
        uint64_t skip = 0, elems = 0;
        int hdr = 0; /* bytes of length/count that follow the type byte */
        int kind = 0; /* 0: scalar of `skip` bytes, 1: bytes of length, 2: array, 3: map */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            skip = 0;
        } else if (b >= 0x80 && b <= 0x8f) {
            kind = 3;
            elems = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            kind = 2;
            elems = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: hdr = 1; kind = 1; break; /* bin8, str8 */
            case 0xc5: case 0xda: hdr = 2; kind = 1; break; /* bin16, str16 */
            case 0xc6: case 0xdb: hdr = 4; kind = 1; break; /* bin32, str32 */
            case 0xc7: hdr = 1; kind = 1; skip = 1; break;  /* ext8 (+ type byte) */
            case 0xc8: hdr = 2; kind = 1; skip = 1; break;  /* ext16 */
            case 0xc9: hdr = 4; kind = 1; skip = 1; break;  /* ext32 */
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xd4: skip = 2; break;  /* fixext1: type + 1 */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: hdr = 2; kind = 2; break;
            case 0xdd: hdr = 4; kind = 2; break;
            case 0xde: hdr = 2; kind = 3; break;
            case 0xdf: hdr = 4; kind = 3; break;
            default: return -1; /* 0xc1: never used */
            }
        }
        if (hdr) {
            if (len - pos < (size_t)hdr)
                return -1;
            uint64_t n = be(p + pos, hdr);
            pos += (size_t)hdr;
            if (kind == 1)
                skip += n;
            else
                elems = n;
        }
        if (kind == 2 || kind == 3) {
            uint64_t add = kind == 3 ? elems * 2 : elems;
            pending += add;
            if (pending > len - pos)
                return -1; /* more elements announced than bytes left */
        } else {
            if (skip > len - pos)
                return -1;
            pos += (size_t)skip;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- unpacking */

#define MP_ZONE_CHUNK 8192

static __thread msgpack_zone *thread_zone;
static __thread int thread_zone_busy;

msgpack_zone *mp_unpack(const char *data, size_t len, msgpack_object *obj)
{
    if (mp_check(data, len) != 0)
        return NULL;
    msgpack_zone *z;
    if (!thread_zone_busy) {
        if (!thread_zone)
            thread_zone = msgpack_zone_new(MP_ZONE_CHUNK);
        z = thread_zone;
        thread_zone_busy = 1;
    } else {
        z = msgpack_zone_new(MP_ZONE_CHUNK);
    }
    if (!z) {
        fprintf(stderr, "caravan: out of memory creating a msgpack zone\n");
        abort();
    }
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack(data, len, &off, z, obj);
    if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES)
        return z; /* bytes after the object are padding (raft entries) */
    mp_unpack_done(z);
    return NULL;
}

void mp_unpack_done(msgpack_zone *zone)
{
    if (!zone)
        return;
    if (zone == thread_zone) {
        msgpack_zone_clear(zone);
        thread_zone_busy = 0;
    } else {
        msgpack_zone_free(zone);
    }
}
