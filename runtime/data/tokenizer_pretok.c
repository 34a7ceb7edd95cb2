/*
 * tokenizer_pretok.c - GPT-2's pre-tokenisation: the pieces its regular
 * expression cuts text into before BPE merges each one (tokenizer.h),
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * matched by hand on UTF-8, one piece at a time, with the Unicode classes
 * of tokenizer_unicode.c. Invalid UTF-8 bytes count as "other" characters
 * of their own, so any byte string is cut into pieces.
 */
#include <string.h>

#include "tokenizer.h"

int tsr_unicode_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- pre-tokenisation ------------------------------------------------- */

enum { CLS_LETTER, CLS_NUMBER, CLS_SPACE, CLS_OTHER };

/* Decodes one UTF-8 character at s[0..n); invalid bytes decode alone to
 * an "other" character. Returns its byte length (>= 1). */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp, int *valid)
{
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    *valid = 0;
    *cp = c;
    if (len == 1) {
        *valid = 1;
        return 1;
    }
    if (len == 0 || len > n)
        return 1;
    uint32_t v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 1;
    *cp = v;
    *valid = 1;
    return len;
}

static int classify(const char *text, size_t len, size_t pos, size_t *width)
{
    uint32_t cp = 0;
    int valid = 0;
    *width = decode((const unsigned char *)text + pos, len - pos, &cp, &valid);
    if (!valid)
        return CLS_OTHER;
    if (tsr_unicode_is_letter(cp))
        return CLS_LETTER;
    if (tsr_unicode_is_number(cp))
        return CLS_NUMBER;
    if (tsr_unicode_is_space(cp))
        return CLS_SPACE;
    return CLS_OTHER;
}

/* End of the run of class `cls` starting at pos; *last gets the start of
 * its last character. */
static size_t run_end(const char *text, size_t len, size_t pos, int cls, size_t *last)
{
    *last = pos;
    while (pos < len) {
        size_t w = 0;
        if (classify(text, len, pos, &w) != cls)
            break;
        *last = pos;
        pos += w;
    }
    return pos;
}

size_t tsr_pretokenize_next(const char *text, size_t len, size_t pos)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    if (text[pos] == '\'')
        for (size_t i = 0; i < sizeof contractions / sizeof contractions[0]; i++) {
            size_t n = strlen(contractions[i]);
            if (len - pos >= n && memcmp(text + pos, contractions[i], n) == 0)
                return pos + n;
        }
    size_t w = 0, last = 0;
    int cls = classify(text, len, pos, &w);
    if (text[pos] == ' ' && pos + 1 < len) { /* " ?" before letters, numbers, others */
        size_t w2 = 0;
        int next = classify(text, len, pos + 1, &w2);
        if (next != CLS_SPACE)
            return run_end(text, len, pos + 1, next, &last);
    }
    if (cls != CLS_SPACE)
        return run_end(text, len, pos, cls, &last);
    size_t end = run_end(text, len, pos, CLS_SPACE, &last);
    if (end == len)
        return end; /* \s+(?!\S) takes a run that ends the text */
    if (last > pos)
        return last; /* ... or leaves the last space for the next word */
    return end;      /* \s+: one space before a non-space */
}
