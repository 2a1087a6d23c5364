/*
 * t_mpcheck.c - mp_check accepts exactly the msgpack objects that are complete and whose
 * containers announce no more elements than bytes remain.
 */
#include <check.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "structs/mpcheck.h"

#define CHECK_BYTES(ok, ...)                                                                  \
    do {                                                                                      \
        static const unsigned char b_[] = {__VA_ARGS__};                                      \
        ck_assert_int_eq(mp_check((const char *)b_, sizeof b_), (ok) ? 0 : -1);               \
    } while (0)

START_TEST(test_well_formed)
{
    /* Every kind of msgpack value msgpack-c packs is accepted, nested, with padding. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "abc", 3);
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int64(&pk, (int64_t)i * 1000003 * (i % 2 ? -1 : 1) * (i > 10 ? 100000 : 1));
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "b", 1);
    char big[70000];
    memset(big, 'x', sizeof big);
    msgpack_pack_bin(&pk, sizeof big);
    msgpack_pack_bin_body(&pk, big, sizeof big);
    msgpack_pack_double(&pk, 1.5);
    ck_assert_int_eq(mp_check(sb.data, sb.size), -1); /* the third pair's value is missing */
    msgpack_pack_float(&pk, 2.5f);
    ck_assert_int_eq(mp_check(sb.data, sb.size), 0);
    ck_assert_int_eq(mp_check(sb.data, sb.size - 1), -1); /* truncated */
    msgpack_pack_nil(&pk); /* bytes after the object (raft entries are padded) */
    ck_assert_int_eq(mp_check(sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_huge_counts_refused)
{
    /* Containers announcing more elements than bytes remain are refused before any
     * allocation: this is what made msgpack-c ask for 128 GB (found by fuzz_msgpack). */
    CHECK_BYTES(false, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00);
    CHECK_BYTES(false, 0xdf, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02);
    CHECK_BYTES(false, 0x92, 0x01);           /* fixarray of 2, one element */
    CHECK_BYTES(true, 0x92, 0x01, 0x02);
    CHECK_BYTES(false, 0x81, 0xa1, 'k');      /* fixmap: key without value */
    CHECK_BYTES(true, 0x81, 0xa1, 'k', 0xc0);
    CHECK_BYTES(false, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'); /* str32 longer than the data */
    CHECK_BYTES(false, 0xc7, 0x05, 0x01, 0x00);            /* ext8 cut short */
    CHECK_BYTES(true, 0xd4, 0x01, 0x00);                   /* fixext1 */
    CHECK_BYTES(false, 0xc1);                              /* never used */
    CHECK_BYTES(false);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpcheck");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_well_formed);
    tcase_add_test(tc, test_huge_counts_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
