/* Misuse of libsegura's C ABI must give error codes, never a crash. Prints one line per case. */
#include <stdio.h>
#include "segura.h"

static int expect(const char *what, int got, int want) {
    printf("%s: %d (%s)\n", what, got, segura_last_error());
    return got == want ? 0 : 1;
}

int main(void) {
    int bad = 0;
    segura_t *h = NULL;
    segura_rec_t *r = NULL;
    bad |= expect("open(out=NULL)", segura_open(NULL, NULL), SEGURA_E_NULL);
    bad |= expect("open(invalid UTF-8 path)", segura_open("/tmp/\xff\xfe.toml", &h), SEGURA_E_UTF8);
    bad |= expect("open(missing file)", segura_open("/nonexistent/segura.toml", &h), SEGURA_E_FAILED);
    bad |= expect("close(NULL)", segura_close(NULL), SEGURA_E_NULL);
    bad |= expect("open", segura_open(NULL, &h), SEGURA_OK);
    bad |= expect("policy_check(user=NULL)", segura_policy_check(h, NULL, NULL, NULL, NULL, NULL, NULL), SEGURA_E_NULL);
    bad |= expect("policy_check(user invalid UTF-8)", segura_policy_check(h, "\xc3\x28", NULL, NULL, NULL, NULL, NULL), SEGURA_E_UTF8);
    bad |= expect("policy_check(unknown user)", segura_policy_check(h, "no-such-user-xyz", NULL, NULL, NULL, NULL, NULL), SEGURA_E_FAILED);
    bad |= expect("rec_begin(command=NULL)", segura_rec_begin(h, NULL, NULL, 80, 24, &r), SEGURA_E_NULL);
    bad |= expect("rec_output(NULL rec)", segura_rec_output(NULL, (const uint8_t *)"x", 1, 0), SEGURA_E_NULL);
    bad |= expect("rec_begin", segura_rec_begin(h, NULL, "misuse", 80, 24, &r), SEGURA_OK);
    bad |= expect("rec_output(data=NULL, len=3)", segura_rec_output(r, NULL, 3, 0), SEGURA_E_NULL);
    bad |= expect("rec_end", segura_rec_end(r, 0, NULL), SEGURA_OK);
    bad |= expect("rec_end twice", segura_rec_end(r, 0, NULL), SEGURA_E_INVALID);
    bad |= expect("rec_output after end", segura_rec_output(r, (const uint8_t *)"x", 1, 0), SEGURA_E_INVALID);
    bad |= expect("close", segura_close(h), SEGURA_OK);
    bad |= expect("close twice", segura_close(h), SEGURA_E_INVALID);
    bad |= expect("status after close", segura_status(h, NULL, NULL), SEGURA_E_INVALID);
    printf(bad ? "FAILED\n" : "all misuse reported\n");
    return bad;
}
