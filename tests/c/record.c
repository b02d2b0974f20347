/* Records a short session through libsegura's C ABI, then prints the recording's id.
 * Usage: record  (configuration and spool from SEGURA_CONFIG / SEGURA_SPOOL) */
#include <stdio.h>
#include <string.h>
#include "segura.h"

#define CHECK(call) do { int rc_ = (call); if (rc_ != SEGURA_OK) { \
    fprintf(stderr, "%s: %d: %s\n", #call, rc_, segura_last_error()); return 1; } } while (0)

int main(void) {
    segura_t *h = NULL;
    segura_rec_t *r = NULL;
    char *id = NULL, *rule = NULL;
    int record = -1, audit = -1;
    const unsigned char out1[] = "hello from C \xe2\x82\xac\r\n";
    const unsigned char out2[] = {0xff, 0x00, 0xfe, 'x', '\r', '\n'};
    const unsigned char in1[] = "ls -l\r";

    printf("version %s\n", segura_version());
    CHECK(segura_open(NULL, &h));
    CHECK(segura_policy_check(h, "root", "sshd", NULL, &record, &audit, &rule));
    printf("policy root: record=%d audit=%d rule=%s\n", record, audit, rule ? rule : "(none)");
    segura_string_free(rule);
    CHECK(segura_rec_begin(h, NULL, "c-program demo", 100, 30, &r));
    CHECK(segura_rec_output(r, out1, sizeof out1 - 1, 1000));
    CHECK(segura_rec_input(r, in1, sizeof in1 - 1, 250000));
    CHECK(segura_rec_resize(r, 120, 40, 500000));
    CHECK(segura_rec_output(r, out2, sizeof out2, 1500000));
    CHECK(segura_rec_end(r, 7, &id));
    uint64_t pending = 0, bytes = 0;
    CHECK(segura_status(h, &pending, &bytes));
    printf("pending %llu recordings\n", (unsigned long long)pending);
    printf("id %s\n", id);
    segura_string_free(id);
    CHECK(segura_close(h));
    return 0;
}
