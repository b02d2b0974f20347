/* Latency of one PAM session (pam_start, pam_open_session, pam_close_session, pam_end) through
 * the real libpam, as a login service pays it. Usage: pam_latency SERVICE USER N
 * Prints "p50_us p99_us". */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int no_conv(int n, const struct pam_message **m, struct pam_response **r, void *d) {
    (void)n; (void)m; (void)r; (void)d;
    return PAM_CONV_ERR;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SERVICE USER N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    double *t = calloc((size_t)n, sizeof *t);
    struct pam_conv conv = {no_conv, NULL};
    for (int i = 0; i < n; i++) {
        struct timespec a, b;
        pam_handle_t *h = NULL;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = pam_start(argv[1], argv[2], &conv, &h);
        if (rc == PAM_SUCCESS) rc = pam_open_session(h, 0);
        if (rc == PAM_SUCCESS) rc = pam_close_session(h, 0);
        pam_end(h, rc);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc != PAM_SUCCESS) {
            fprintf(stderr, "pam: %s\n", pam_strerror(h, rc));
            return 1;
        }
        t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%.0f %.0f\n", t[n / 2], t[(n * 99) / 100]);
    return 0;
}
