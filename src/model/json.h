/* A strict, bounded JSON parser for the model file's header (RFC 8259):
 * no trailing commas, comments, NaN/Infinity or leading zeros; strings must be
 * valid UTF-8 without raw control characters; an object with two equal keys
 * is refused. Nesting is capped at JSON_MAX_DEPTH and the caller caps the
 * text length, so the tree never holds more nodes than the text has bytes. */
#ifndef CNNC_MODEL_JSON_H
#define CNNC_MODEL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "cnnc_internal.h"

#define JSON_MAX_DEPTH 64

typedef enum json_type {
    JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_type;

typedef struct json_value {
    json_type type;
    int boolean;
    int is_integer;          /* a number written without fraction or exponent that fits int64 */
    int64_t integer;
    double number;
    char *string;            /* decoded, NUL-terminated (strings and object keys never hold NUL) */
    size_t length;
    size_t count;            /* array items or object members */
    struct json_value *items;
    char **keys;             /* objects: keys[i] names items[i] */
} json_value;

/* Parses text[0, length) (exactly one value, surrounding whitespace allowed).
 * `what` names the document in error messages. */
CNNC_INTERNAL cnnc_status json_parse(const char *text, size_t length, const char *what, json_value **out);
CNNC_INTERNAL void json_free(json_value *value);

/* Member `key` of an object, NULL if absent or not an object. */
CNNC_INTERNAL const json_value *json_get(const json_value *object, const char *key);
/* Typed accessors: NULL when the member is absent or of another type. */
CNNC_INTERNAL const char *json_get_string(const json_value *object, const char *key);
CNNC_INTERNAL const json_value *json_get_array(const json_value *object, const char *key);
CNNC_INTERNAL const json_value *json_get_object(const json_value *object, const char *key);

#endif
