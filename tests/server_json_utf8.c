/*
 * server_json_utf8.c - the one UTF-8 validator (core/utf8.c) that the
 * engine, the decoders and the JSON writers share: named valid and invalid
 * sequences (overlongs, surrogates, past U+10FFFF, cut short, stray
 * continuation bytes), and every 1-, 2- and 3-byte input and a wide sample
 * of 4-byte ones against a decoder written from RFC 3629's table instead.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* RFC 3629 section 4, the byte ranges of each well-formed sequence:
 * another way to the same answer (lengths 1..4, 0 when not well formed). */
static size_t rfc3629_len(const unsigned char *s, size_t left)
{
    static const struct {
        unsigned char b0lo, b0hi, b1lo, b1hi;
        size_t n;
    } rows[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    if (left == 0)
        return 0;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].b0lo || s[0] > rows[r].b0hi)
            continue;
        size_t n = rows[r].n;
        if (n == 1)
            return 1;
        if (left < n || s[1] < rows[r].b1lo || s[1] > rows[r].b1hi)
            return 0;
        for (size_t i = 2; i < n; i++)
            if (s[i] < 0x80 || s[i] > 0xBF)
                return 0;
        return n;
    }
    return 0;
}

/* A whole string by that table, NUL refused as bp_utf8_valid does. */
static int rfc3629_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if (s[i] == 0 || (n = rfc3629_len(s + i, len - i)) == 0)
            return 0;
    return 1;
}

typedef struct {
    const char *what;
    const char *bytes;
    size_t len;
    size_t seq; /* bp_utf8_seq at the first byte */
} utf8_case;

#define C(what, lit, seq) {what, lit, sizeof(lit) - 1, seq}

static const utf8_case cases[] = {
    C("ASCII", "A", 1),
    C("NUL is one byte (bp_utf8_valid refuses it)", "\0", 1),
    C("U+0080, the first 2-byte", "\xC2\x80", 2),
    C("U+07FF, the last 2-byte", "\xDF\xBF", 2),
    C("U+0800, the first 3-byte", "\xE0\xA0\x80", 3),
    C("U+D7FF, below the surrogates", "\xED\x9F\xBF", 3),
    C("U+E000, above the surrogates", "\xEE\x80\x80", 3),
    C("U+FFFF", "\xEF\xBF\xBF", 3),
    C("U+10000, the first 4-byte", "\xF0\x90\x80\x80", 4),
    C("U+10FFFF, the last code point", "\xF4\x8F\xBF\xBF", 4),
    C("overlong '/' in 2 bytes", "\xC0\xAF", 0),
    C("overlong U+007F in 2 bytes", "\xC1\xBF", 0),
    C("overlong '/' in 3 bytes", "\xE0\x80\xAF", 0),
    C("overlong U+07FF in 3 bytes", "\xE0\x9F\xBF", 0),
    C("overlong '/' in 4 bytes", "\xF0\x80\x80\xAF", 0),
    C("overlong U+FFFF in 4 bytes", "\xF0\x8F\xBF\xBF", 0),
    C("surrogate U+D800", "\xED\xA0\x80", 0),
    C("surrogate U+DBFF", "\xED\xAF\xBF", 0),
    C("surrogate U+DC00", "\xED\xB0\x80", 0),
    C("surrogate U+DFFF", "\xED\xBF\xBF", 0),
    C("U+110000, past the last", "\xF4\x90\x80\x80", 0),
    C("F5 lead byte", "\xF5\x80\x80\x80", 0),
    C("FF byte", "\xFF", 0),
    C("FE byte", "\xFE", 0),
    C("stray continuation 80", "\x80", 0),
    C("stray continuation BF", "\xBF", 0),
    C("2-byte cut short", "\xC3", 0),
    C("3-byte cut short after 2", "\xE2\x82", 0),
    C("4-byte cut short after 3", "\xF0\x9F\x98", 0),
    C("2-byte with ASCII for its continuation", "\xC3\x28", 0),
    C("3-byte with a lead byte for its last", "\xE2\x82\xE2", 0),
    C("4-byte with NUL for its last", "\xF0\x9F\x98\x00", 0),
};

Test(utf8, named_sequences)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const utf8_case *c = &cases[i];
        const unsigned char *s = (const unsigned char *)c->bytes;
        cr_expect_eq(bp_utf8_seq(s, c->len), c->seq, "%s: bp_utf8_seq %zu, expected %zu", c->what,
                     bp_utf8_seq(s, c->len), c->seq);
        int valid = c->seq == c->len && s[0] != 0;
        cr_expect_eq(bp_utf8_valid(c->bytes, c->len), valid, "%s: bp_utf8_valid", c->what);
    }
}

Test(utf8, whole_strings)
{
    cr_expect(bp_utf8_valid("", 0));
    cr_expect(bp_utf8_valid(NULL, 0), "nothing to read is valid");
    cr_expect(bp_utf8_valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14));
    cr_expect(!bp_utf8_valid("ok\0ok", 5), "a NUL inside is refused");
    cr_expect(!bp_utf8_valid("caf\xC3\xA9\xC3", 6), "cut short at the end");
    cr_expect(!bp_utf8_valid("\xC3\xA9", 1), "the length, not the NUL, ends the string");
    cr_expect(!bp_utf8_valid("a\xED\xA0\x80z", 5), "a surrogate inside");
    cr_expect_eq(bp_utf8_seq((const unsigned char *)"\xC3\xA9", 1), 0u,
                 "a sequence longer than what is left");
    cr_expect_eq(bp_utf8_seq((const unsigned char *)"", 0), 0u, "nothing left");
}

/* Every lead byte with every second and third byte (2^24 inputs), each at
 * every length it could be cut to. */
Test(utf8, every_three_byte_input_as_rfc3629)
{
    unsigned char s[3];
    size_t bad = 0;
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (unsigned c = 0; c < 256; c++) {
                s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = (unsigned char)c;
                for (size_t left = 1; left <= 3; left++) {
                    if (left < 3 && c)
                        continue; /* shorter cuts: once per (a, b) */
                    if (left < 2 && b)
                        continue;
                    size_t want = rfc3629_len(s, left);
                    if (bp_utf8_seq(s, left) != want && bad++ < 5)
                        cr_expect_fail("%02X %02X %02X (%zu left): %zu, expected %zu", a, b, c,
                                       left, bp_utf8_seq(s, left), want);
                }
            }
    cr_expect_eq(bad, 0u, "%zu inputs differ", bad);
}

/* 4-byte leads (and their neighbours) with every second byte and the
 * boundary values of the last two. */
Test(utf8, four_byte_inputs_as_rfc3629)
{
    static const unsigned char edge[] = {0x00, 0x7F, 0x80, 0x81, 0xBE, 0xBF, 0xC0, 0xFF};
    unsigned char s[4];
    size_t bad = 0;
    for (unsigned a = 0xEF; a <= 0xF8; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t i = 0; i < sizeof edge; i++)
                for (size_t j = 0; j < sizeof edge; j++) {
                    s[0] = (unsigned char)a, s[1] = (unsigned char)b;
                    s[2] = edge[i], s[3] = edge[j];
                    size_t want = rfc3629_len(s, 4);
                    if (bp_utf8_seq(s, 4) != want && bad++ < 5)
                        cr_expect_fail("%02X %02X %02X %02X: %zu, expected %zu", a, b, edge[i],
                                       edge[j], bp_utf8_seq(s, 4), want);
                    int valid = rfc3629_valid(s, 4);
                    if (bp_utf8_valid((const char *)s, 4) != valid && bad++ < 5)
                        cr_expect_fail("%02X %02X %02X %02X: bp_utf8_valid", a, b, edge[i],
                                       edge[j]);
                }
    cr_expect_eq(bad, 0u, "%zu inputs differ", bad);
}
