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

/* Returns 0 when data starts with one complete msgpack object in which every array and
 * map announces no more elements than bytes remain (an element takes at least one
 * byte), so unpacking it allocates at most a small multiple of len; -1 otherwise. Reads
 * each header once, allocates nothing. Bytes after the object are allowed (padding). */
int mp_check(const char *data, size_t len);

#endif
