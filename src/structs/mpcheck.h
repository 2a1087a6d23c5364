/*
 * mpcheck.h - a bounds check for untrusted msgpack before msgpack-c unpacks it.
 *
 * msgpack-c's unpacker allocates an array or map's elements from the count in its header
 * before reading them: a 5-byte body announcing 2^32 elements asks for 100 GB. Every
 * decoder of bytes that come from the network or the disk (RPC frames, raft entries,
 * snapshots) runs mp_check first.
 */
#ifndef CARAVAN_STRUCTS_MPCHECK_H
#define CARAVAN_STRUCTS_MPCHECK_H

#include <stddef.h>

#include <msgpack.h>

/* Returns 0 when data starts with one complete msgpack object in which every array and
 * map announces no more elements than bytes remain (an element takes at least one
 * byte), so unpacking it allocates at most a small multiple of len; -1 otherwise. Reads
 * each header once, allocates nothing. Bytes after the object are allowed (padding). */
int mp_check(const char *data, size_t len);

/* Checks (mp_check) and unpacks the msgpack object at the start of data into *obj, whose
 * contents live in a per-thread zone until mp_unpack_done(): msgpack_unpack_next made a
 * new 8 KiB zone, a malloc and free, for every message. Returns the zone to pass to
 * mp_unpack_done, or NULL when data is not one acceptable object (nothing to release).
 * A nested call (while another unpacked object is still in use) gets a zone of its own. */
msgpack_zone *mp_unpack(const char *data, size_t len, msgpack_object *obj);
/* Releases what mp_unpack's object used (the per-thread zone keeps its first chunk). */
void mp_unpack_done(msgpack_zone *zone);

#endif
