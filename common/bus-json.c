/* D-Bus values as JSON, whatever their signature: for the CLI's --json and the bridge. */
#include "bus-json.h"
#include "cjson-util.h"

typedef union BusBasic {
        uint8_t y;
        int b;
        int16_t n;
        uint16_t q;
        int32_t i;
        uint32_t u;
        int64_t x;
        uint64_t t;
        double d;
        int h;
        const char *s;
} BusBasic;

static double bus_basic_number(char type, const BusBasic *v) {
        switch (type) {
        case 'y':
                return v->y;
        case 'n':
                return v->n;
        case 'q':
                return v->q;
        case 'i':
                return v->i;
        case 'u':
                return v->u;
        case 'x':
                return (double) v->x;
        case 't':
                return (double) v->t;
        case 'd':
                return v->d;
        default: /* 'h', a file descriptor */
                return v->h;
        }
}

static int read_basic(sd_bus_message *m, char type, cJSON **ret) {
        BusBasic v;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        if (type == 'b')
                *ret = cJSON_CreateBool(v.b);
        else if (type == 's' || type == 'o' || type == 'g')
                *ret = cJSON_CreateString(v.s);
        else
                *ret = cJSON_CreateNumber(bus_basic_number(type, &v));
        return *ret ? 0 : -ENOMEM;
}

static int read_dict_entry(sd_bus_message *m, const char *entry, cJSON *obj) {
        _cleanup_(cJSON_Deletep) cJSON *key = NULL;
        char name[32];
        cJSON *value;
        int r;

        r = sd_bus_message_enter_container(m, 'e', entry);
        if (r <= 0)
                return r;
        r = read_basic(m, entry[0], &key);
        if (r < 0)
                return r;
        /* JSON keys are strings: a{uv} and the like get their numbers spelled out. */
        if (!cJSON_IsString(key))
                snprintf(name, sizeof(name), "%.17g", key->valuedouble);
        r = bus_message_read_json(m, &value);
        if (r < 0)
                return r;
        if (!cJSON_AddItemToObject(obj, cJSON_IsString(key) ? key->valuestring : name, value)) {
                cJSON_Delete(value);
                return -ENOMEM;
        }
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static int read_items(sd_bus_message *m, cJSON *array) {
        int r;

        while ((r = sd_bus_message_at_end(m, false)) == 0) {
                cJSON *item;

                r = bus_message_read_json(m, &item);
                if (r < 0)
                        return r;
                if (!cJSON_AddItemToArray(array, item)) {
                        cJSON_Delete(item);
                        return -ENOMEM;
                }
        }
        return r < 0 ? r : 0;
}

/* a{..} becomes an object, any other array or a struct an array. */
static int read_container(sd_bus_message *m, char type, const char *contents, cJSON **ret) {
        bool dict = type == 'a' && contents[0] == '{';
        _cleanup_(cJSON_Deletep) cJSON *c = dict ? cJSON_CreateObject() : cJSON_CreateArray();
        _cleanup_(freep) char *entry = dict ? strndup(contents + 1, strlen(contents) - 2) : NULL;
        int r;

        if (!c || (dict && !entry))
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;
        if (dict)
                while ((r = read_dict_entry(m, entry, c)) > 0)
                        ;
        else
                r = read_items(m, c);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int read_variant(sd_bus_message *m, const char *contents, cJSON **ret) {
        int r;

        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        r = bus_message_read_json(m, ret);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                cJSON_Delete(TAKE_PTR(*ret));
                return r;
        }
        return 0;
}

/* Reads the next complete value: every key a newer daemon adds reaches --json unchanged. */
int bus_message_read_json(sd_bus_message *m, cJSON **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        if (type == 'v')
                return read_variant(m, contents, ret);
        if (type == 'a' || type == 'r')
                return read_container(m, type, contents, ret);
        return read_basic(m, type, ret);
}

