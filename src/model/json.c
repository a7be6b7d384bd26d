/* Recursive-descent JSON parser; see json.h for the rules it enforces. */
#include <stdlib.h>
#include <string.h>
#include "json.h"

typedef struct parser {
    const unsigned char *p, *end, *begin;
    const char *what;
    cnnc_status status;
} parser;

static int fail(parser *ps, cnnc_status status, const char *why)
{
    if (ps->status == CNNC_OK) {
        ps->status = status;
        cnnc_error(status, "%s: invalid JSON at byte %lld: %s", ps->what, (long long)(ps->p - ps->begin), why);
    }
    return -1;
}

static void skip_space(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ++ps->p;
}

static void free_members(json_value *v)
{
    if (v->type == JSON_STRING) free(v->string);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; ++i) {
            free_members(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
}

void json_free(json_value *value)
{
    if (!value) return;
    free_members(value);
    free(value);
}

static int hex4(parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4) return fail(ps, CNNC_ERR_FORMAT, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
        unsigned c = ps->p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return fail(ps, CNNC_ERR_FORMAT, "bad \\u escape");
        v = v * 16 + d;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (s < end), 0 if invalid. */
static int utf8_length(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; }
    else return 0;
    if (end - s < n) return 0;
    unsigned cp = c & (0x3F >> (n - 1));
    for (int i = 1; i < n; ++i) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static size_t put_utf8(unsigned char *out, unsigned cp)
{
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { out[0] = (unsigned char)(0xC0 | (cp >> 6)); out[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12)); out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18)); out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at ps->p (on the opening quote) into a new buffer. */
static int parse_string(parser *ps, char **out, size_t *out_length)
{
    ++ps->p;
    /* The decoded string is never longer than its source text. */
    const unsigned char *close = ps->p;
    while (close < ps->end && *close != '"') close += (*close == '\\' && close + 1 < ps->end) ? 2 : 1;
    if (close >= ps->end) return fail(ps, CNNC_ERR_FORMAT, "unterminated string");
    unsigned char *buf = malloc((size_t)(close - ps->p) + 1);
    if (!buf) return fail(ps, CNNC_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned c = *ps->p;
        if (c < 0x20) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "control character in a string"); }
        if (c != '\\') {
            int len = utf8_length(ps->p, ps->end);
            if (len == 0) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "invalid UTF-8"); }
            memcpy(buf + n, ps->p, (size_t)len);
            n += (size_t)len;
            ps->p += len;
            continue;
        }
        ++ps->p;
        if (ps->p >= ps->end) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "truncated escape"); }
        c = *ps->p++;
        switch (c) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(ps, &cp)) { free(buf); return -1; }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned low;
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    free(buf); return fail(ps, CNNC_ERR_FORMAT, "unpaired surrogate");
                }
                ps->p += 2;
                if (hex4(ps, &low)) { free(buf); return -1; }
                if (low < 0xDC00 || low > 0xDFFF) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "unpaired surrogate"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(buf); return fail(ps, CNNC_ERR_FORMAT, "unpaired surrogate");
            }
            if (cp == 0) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "\\u0000 in a string"); }
            /* An escape takes at least 6 source bytes and yields at most 4. */
            n += put_utf8(buf + n, cp);
            break;
        }
        default: free(buf); return fail(ps, CNNC_ERR_FORMAT, "unknown escape");
        }
    }
    if (ps->p >= ps->end) { free(buf); return fail(ps, CNNC_ERR_FORMAT, "unterminated string"); }
    ++ps->p;
    buf[n] = '\0';
    *out = (char *)buf;
    *out_length = n;
    return 0;
}

static int parse_number(parser *ps, json_value *v)
{
    const unsigned char *start = ps->p;
    int integral = 1;
    if (ps->p < ps->end && *ps->p == '-') ++ps->p;
    if (ps->p >= ps->end) return fail(ps, CNNC_ERR_FORMAT, "bad number");
    if (*ps->p == '0') ++ps->p;
    else if (*ps->p >= '1' && *ps->p <= '9') while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ++ps->p;
    else return fail(ps, CNNC_ERR_FORMAT, "bad number");
    if (ps->p < ps->end && *ps->p == '.') {
        integral = 0;
        ++ps->p;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, CNNC_ERR_FORMAT, "bad fraction");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ++ps->p;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = 0;
        ++ps->p;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ++ps->p;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, CNNC_ERR_FORMAT, "bad exponent");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ++ps->p;
    }
    size_t len = (size_t)(ps->p - start);
    char local[64];
    char *copy = len < sizeof local ? local : malloc(len + 1);
    if (!copy) return fail(ps, CNNC_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(copy, start, len);
    copy[len] = '\0';
    v->type = JSON_NUMBER;
    v->number = strtod(copy, NULL);
    if (integral) {
        /* Exact int64 parse; numbers beyond it are kept as doubles only. */
        const char *s = copy;
        int negative = *s == '-';
        if (negative) ++s;
        uint64_t acc = 0;
        int fits = 1;
        for (; *s; ++s) {
            unsigned d = (unsigned)(*s - '0');
            if (acc > (UINT64_MAX - d) / 10) { fits = 0; break; }
            acc = acc * 10 + d;
        }
        if (fits && (negative ? acc <= (uint64_t)INT64_MAX + 1 : acc <= (uint64_t)INT64_MAX)) {
            v->is_integer = 1;
            v->integer = negative ? (int64_t)(0 - acc) : (int64_t)acc;
        }
    }
    if (copy != local) free(copy);
    return 0;
}

static int match_word(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return fail(ps, CNNC_ERR_FORMAT, "unexpected token");
    ps->p += n;
    return 0;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

static int check_duplicate_keys(parser *ps, json_value *v)
{
    if (v->count < 2) return 0;
    char ***order = malloc(v->count * sizeof *order);
    if (!order) return fail(ps, CNNC_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < v->count; ++i) order[i] = &v->keys[i];
    qsort(order, v->count, sizeof *order, compare_keys);
    for (size_t i = 1; i < v->count; ++i) {
        if (strcmp(*order[i - 1], *order[i]) == 0) {
            cnnc_status s = CNNC_ERR_FORMAT;
            if (ps->status == CNNC_OK) {
                ps->status = s;
                cnnc_error(s, "%s: duplicate key \"%.100s\" in a JSON object", ps->what, *order[i]);
            }
            free(order);
            return -1;
        }
    }
    free(order);
    return 0;
}

static int parse_value(parser *ps, json_value *v, int depth);

/* Appends an uninitialized slot to an array or object, growing by doubling. */
static json_value *append(parser *ps, json_value *v, size_t *capacity, int with_key)
{
    if (v->count == *capacity) {
        size_t cap = *capacity ? *capacity * 2 : 4;
        json_value *items = realloc(v->items, cap * sizeof *items);
        if (!items) { fail(ps, CNNC_ERR_OUT_OF_MEMORY, "out of memory"); return NULL; }
        v->items = items;
        if (with_key) {
            char **keys = realloc(v->keys, cap * sizeof *keys);
            if (!keys) { fail(ps, CNNC_ERR_OUT_OF_MEMORY, "out of memory"); return NULL; }
            v->keys = keys;
        }
        *capacity = cap;
    }
    json_value *slot = &v->items[v->count];
    memset(slot, 0, sizeof *slot);
    if (with_key) v->keys[v->count] = NULL;
    ++v->count;
    return slot;
}

static int parse_container(parser *ps, json_value *v, int depth, int object)
{
    size_t capacity = 0;
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    ++ps->p;
    skip_space(ps);
    char close = object ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) { ++ps->p; return 0; }
    for (;;) {
        skip_space(ps);
        json_value *slot = append(ps, v, &capacity, object);
        if (!slot) return -1;
        if (object) {
            size_t key_length;
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, CNNC_ERR_FORMAT, "expected a key");
            if (parse_string(ps, &v->keys[v->count - 1], &key_length)) return -1;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, CNNC_ERR_FORMAT, "expected ':'");
            ++ps->p;
            skip_space(ps);
        }
        if (parse_value(ps, slot, depth + 1)) return -1;
        skip_space(ps);
        if (ps->p >= ps->end) return fail(ps, CNNC_ERR_FORMAT, "unterminated container");
        if (*ps->p == ',') { ++ps->p; continue; }
        if (*ps->p == close) { ++ps->p; break; }
        return fail(ps, CNNC_ERR_FORMAT, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    return object ? check_duplicate_keys(ps, v) : 0;
}

static int parse_value(parser *ps, json_value *v, int depth)
{
    if (depth > JSON_MAX_DEPTH) return fail(ps, CNNC_ERR_FORMAT, "nesting deeper than the limit");
    skip_space(ps);
    if (ps->p >= ps->end) return fail(ps, CNNC_ERR_FORMAT, "unexpected end");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, depth, 1);
    case '[': return parse_container(ps, v, depth, 0);
    case '"': v->type = JSON_STRING; return parse_string(ps, &v->string, &v->length);
    case 't': v->type = JSON_BOOL; v->boolean = 1; return match_word(ps, "true");
    case 'f': v->type = JSON_BOOL; v->boolean = 0; return match_word(ps, "false");
    case 'n': v->type = JSON_NULL; return match_word(ps, "null");
    default: return parse_number(ps, v);
    }
}

cnnc_status json_parse(const char *text, size_t length, const char *what, json_value **out)
{
    *out = NULL;
    parser ps = {(const unsigned char *)text, (const unsigned char *)text + length, (const unsigned char *)text,
                 what, CNNC_OK};
    json_value *root = calloc(1, sizeof *root);
    if (!root) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    if (parse_value(&ps, root, 0) == 0) {
        skip_space(&ps);
        if (ps.p != ps.end) fail(&ps, CNNC_ERR_FORMAT, "text after the value");
    }
    if (ps.status != CNNC_OK) {
        json_free(root);
        return ps.status;
    }
    *out = root;
    return CNNC_OK;
}

const json_value *json_get(const json_value *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; ++i)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

const char *json_get_string(const json_value *object, const char *key)
{
    const json_value *v = json_get(object, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}

const json_value *json_get_array(const json_value *object, const char *key)
{
    const json_value *v = json_get(object, key);
    return v && v->type == JSON_ARRAY ? v : NULL;
}

const json_value *json_get_object(const json_value *object, const char *key)
{
    const json_value *v = json_get(object, key);
    return v && v->type == JSON_OBJECT ? v : NULL;
}
