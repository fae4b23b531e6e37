/* YAML to cJSON through libyaml's document API, with the scalar typing our specs need. */
#include <stdarg.h>
#include <yaml.h>

#include "cjson-util.h"
#include "yaml-json.h"

/* No spec nests this deep; the limit also ends alias cycles such as &a [*a]. */
#define YAML_DEPTH_MAX 64
/* Aliases can expand a small document exponentially ("billion laughs"). */
#define YAML_NODES_MAX 20000

typedef struct Converter {
        yaml_document_t *doc;
        size_t n_nodes;
        char *errbuf;
        size_t errlen;
} Converter;

static int convert_node(Converter *c, const yaml_node_t *node, unsigned depth, cJSON **ret);

_printf_(4, 5)
static int fail(Converter *c, const yaml_node_t *node, int r, const char *fmt, ...) {
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(c->errbuf, c->errlen, "line %zu column %zu: %s", node->start_mark.line + 1,
                 node->start_mark.column + 1, what);
        return r;
}

static bool is_decimal_integer(const char *s, size_t n) {
        size_t i = s[0] == '-' ? 1 : 0;

        if (i == n)
                return false;
        for (; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* Only plain scalars are typed: quoting is how YAML says "this is a string". */
static cJSON *scalar_to_json(const char *v, size_t n, yaml_scalar_style_t style) {
        if (style != YAML_PLAIN_SCALAR_STYLE)
                return cJSON_CreateString(v);
        if (n == 0 || streq(v, "null") || streq(v, "~"))
                return cJSON_CreateNull();
        if (streq(v, "true") || streq(v, "false"))
                return cJSON_CreateBool(v[0] == 't');
        if (is_decimal_integer(v, n))
                return cJSON_CreateNumber(strtod(v, NULL));
        return cJSON_CreateString(v);
}

static int convert_scalar(Converter *c, const yaml_node_t *node, cJSON **ret) {
        const char *v = (const char *) node->data.scalar.value;
        size_t n = node->data.scalar.length;

        if (memchr(v, 0, n))
                return fail(c, node, -EINVAL, "a NUL character in a scalar is not supported");
        *ret = scalar_to_json(v, n, node->data.scalar.style);
        if (!*ret)
                return fail(c, node, -ENOMEM, "out of memory");
        return 0;
}

static int convert_sequence(Converter *c, const yaml_node_t *node, unsigned depth, cJSON **ret) {
        _cleanup_(cJSON_Deletep) cJSON *array = cJSON_CreateArray();
        int r;

        if (!array)
                return fail(c, node, -ENOMEM, "out of memory");
        for (yaml_node_item_t *i = node->data.sequence.items.start;
             i < node->data.sequence.items.top; i++) {
                cJSON *item;

                r = convert_node(c, yaml_document_get_node(c->doc, *i), depth + 1, &item);
                if (r < 0)
                        return r;
                if (!cJSON_AddItemToArray(array, item)) {
                        cJSON_Delete(item);
                        return fail(c, node, -ENOMEM, "out of memory");
                }
        }
        *ret = TAKE_PTR(array);
        return 0;
}

static int add_pair(Converter *c, cJSON *obj, const yaml_node_pair_t *p, unsigned depth) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const char *key;
        cJSON *value;
        int r;

        if (k->type != YAML_SCALAR_NODE)
                return fail(c, k, -EINVAL, "a mapping key must be a scalar");
        key = (const char *) k->data.scalar.value;
        if (memchr(key, 0, k->data.scalar.length))
                return fail(c, k, -EINVAL, "a NUL character in a key is not supported");
        if (cJSON_GetObjectItemCaseSensitive(obj, key))
                return fail(c, k, -EEXIST, "duplicate key '%s'", key);

        r = convert_node(c, yaml_document_get_node(c->doc, p->value), depth + 1, &value);
        if (r < 0)
                return r;
        if (!cJSON_AddItemToObject(obj, key, value)) {
                cJSON_Delete(value);
                return fail(c, k, -ENOMEM, "out of memory");
        }
        return 0;
}

static int convert_mapping(Converter *c, const yaml_node_t *node, unsigned depth, cJSON **ret) {
        _cleanup_(cJSON_Deletep) cJSON *obj = cJSON_CreateObject();
        int r;

        if (!obj)
                return fail(c, node, -ENOMEM, "out of memory");
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
                r = add_pair(c, obj, p, depth);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

static int convert_node(Converter *c, const yaml_node_t *node, unsigned depth, cJSON **ret) {
        if (depth > YAML_DEPTH_MAX)
                return fail(c, node, -ELOOP, "nested too deeply or an alias refers to itself");
        if (++c->n_nodes > YAML_NODES_MAX)
                return fail(c, node, -E2BIG, "too many nodes (aliases expanding too far?)");

        switch (node->type) {
        case YAML_SCALAR_NODE:
                return convert_scalar(c, node, ret);
        case YAML_SEQUENCE_NODE:
                return convert_sequence(c, node, depth, ret);
        case YAML_MAPPING_NODE:
                return convert_mapping(c, node, depth, ret);
        default:
                return fail(c, node, -EINVAL, "empty node");
        }
}

static void format_parser_error(const yaml_parser_t *p, char *errbuf, size_t errlen) {
        if (p->error == YAML_MEMORY_ERROR)
                snprintf(errbuf, errlen, "out of memory");
        else if (p->error == YAML_READER_ERROR)
                snprintf(errbuf, errlen, "byte %zu: %s", p->problem_offset, p->problem);
        else if (p->context)
                snprintf(errbuf, errlen, "line %zu column %zu: %s %s (line %zu column %zu)",
                         p->problem_mark.line + 1, p->problem_mark.column + 1, p->problem,
                         p->context, p->context_mark.line + 1, p->context_mark.column + 1);
        else
                snprintf(errbuf, errlen, "line %zu column %zu: %s", p->problem_mark.line + 1,
                         p->problem_mark.column + 1, p->problem);
}

cJSON *yaml_to_json(const char *text, size_t len, char *errbuf, size_t errlen) {
        _cleanup_(yaml_parser_delete) yaml_parser_t parser = {};
        _cleanup_(yaml_document_delete) yaml_document_t doc = {};
        Converter c = { .doc = &doc, .errbuf = errbuf, .errlen = errlen };
        const yaml_node_t *root;
        cJSON *json;

        if (!yaml_parser_initialize(&parser)) {
                snprintf(errbuf, errlen, "out of memory");
                return NULL;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                format_parser_error(&parser, errbuf, errlen);
                return NULL;
        }

        root = yaml_document_get_root_node(&doc);
        if (!root) {
                snprintf(errbuf, errlen, "no document found");
                return NULL;
        }
        if (convert_node(&c, root, 0, &json) < 0)
                return NULL;
        return json;
}
