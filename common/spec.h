/* The desired state of a node's secondary NICs, and its validation. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

#define SPEC_INTERFACES_MAX 256
#define SPEC_ID_MAX 1023
#define SPEC_STRING_MAX 256
#define SPEC_MTU_MIN 68
#define SPEC_INSTANCE_ID_MAX 64
#define MAC_STRLEN 18

typedef enum SpecField {
        SPEC_FIELD_ID = 1 << 0,
        SPEC_FIELD_NAME = 1 << 1,
        SPEC_FIELD_MAC = 1 << 2,
        SPEC_FIELD_ADDRESS = 1 << 3,
        SPEC_FIELD_CIDR = 1 << 4,
        SPEC_FIELD_MTU = 1 << 5,
} SpecField;

typedef struct SpecInterface {
        unsigned fields_set; /* SpecField bits */
        uint32_t id;
        char name[IFNAMSIZ];
        uint8_t mac[6];
        struct in_addr address;
        struct in_addr network;
        uint8_t prefixlen;
        uint32_t mtu; /* 0: leave the device's MTU as it is */
} SpecInterface;

typedef struct SpecOptions {
        char instance_id[SPEC_INSTANCE_ID_MAX + 1]; /* empty: not checked */
        bool allow_up;
        bool policy_routing;
        bool persist;
} SpecOptions;

typedef struct Spec {
        SpecInterface *interfaces;
        size_t n_interfaces;
        SpecOptions options;
} Spec;

void spec_init(Spec *spec);
void spec_done(Spec *spec);

/* Appends a zeroed entry; fails with an error naming the array when it would grow too long. */
int spec_add_interface(Spec *spec, SpecInterface **ret, Error *e);

/* Field setters shared by every input format. idx is the entry's position, for messages. */
int spec_interface_set_string(SpecInterface *iface, size_t idx, const char *key, const char *value,
                              Error *e);
int spec_interface_set_uint(SpecInterface *iface, size_t idx, const char *key, uint64_t value,
                            Error *e);
int spec_options_set_string(SpecOptions *o, const char *key, const char *value, Error *e);
int spec_options_set_bool(SpecOptions *o, const char *key, bool value, Error *e);

/* The type a key wants: 's', 'u' or 'b'; 0 for an unknown key. */
char spec_interface_key_type(const char *key);
char spec_options_key_type(const char *key);

/* Checks required fields and everything that spans entries, and fills in default names. */
int spec_validate(Spec *spec, Error *e);

/* Field parsers, strict: they accept exactly one spelling. */
int mac_parse(const char *s, uint8_t ret[6]);
void mac_format(const uint8_t mac[6], char ret[MAC_STRLEN]);
bool ifname_valid(const char *name);
int cidr_parse(const char *s, struct in_addr *ret_network, uint8_t *ret_prefixlen);
uint32_t prefix_to_mask(uint8_t prefixlen); /* host byte order */
