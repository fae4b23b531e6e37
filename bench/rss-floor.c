/* The least a process does with multinic-bridge's libraries: the memory baseline of bridge-bench.
 *
 * Loads and initialises the same libraries as multinic-bridge (libcurl, libsystemd, libcjson,
 * libmicrohttpd), connects to the system bus, makes one verified HTTPS GET, then prints "ready"
 * and waits for SIGTERM, so that its VmRSS can be read next to the bridge's in the same run.
 *
 * Usage: rss-floor URL CA-FILE TOKEN-FILE */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static size_t keep(char *ptr, size_t size, size_t n, void *userdata) {
        cJSON *doc = cJSON_ParseWithLength(ptr, size * n); /* parsed, as the bridge does */

        cJSON_Delete(doc);
        return size * n;
}

static int get(const char *url, const char *ca, const char *token_file) {
        char token[4096] = "", auth[4200];
        struct curl_slist *headers = NULL;
        FILE *f = fopen(token_file, "re");
        CURL *h = curl_easy_init();
        long code = 0;
        CURLcode cc;

        if (!f || !h)
                return -1;
        if (!fgets(token, sizeof(token), f))
                token[0] = 0;
        fclose(f);
        token[strcspn(token, "\n")] = 0;
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
        if (cc != CURLE_OK || code != 200) {
                fprintf(stderr, "rss-floor: GET %s: %s, HTTP %ld\n", url, curl_easy_strerror(cc),
                        code);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        const char *unique;
        sigset_t set;
        int sig;

        if (argc != 4) {
                fprintf(stderr, "usage: rss-floor URL CA-FILE TOKEN-FILE\n");
                return 2;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        /* A call into libmicrohttpd keeps it linked, as it is in the bridge, which starts no
         * server either with --port=0. */
        if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) < 0 || sd_bus_open_system(&bus) < 0 ||
            sd_bus_get_unique_name(bus, &unique) < 0 ||
            get(argv[1], argv[2], argv[3]) < 0)
                return 1;
        printf("ready\n");
        fflush(stdout);
        sigwait(&set, &sig);
        sd_bus_flush_close_unref(bus);
        curl_global_cleanup();
        return 0;
}
