/* A C program using the cnnc core without Python: activations and a softmax.
 *
 * Build against an installed cnnc (see README.md):
 *   cc activations_demo.c $(pkg-config --cflags --libs cnnc) -o activations_demo
 * or with CMake: find_package(cnnc CONFIG) and link cnnc::cnnc (CMakeLists.txt here). */
#include <stdio.h>
#include <cnnc.h>

static int check(cnnc_status status)
{
    if (status != CNNC_OK)
        fprintf(stderr, "cnnc: %s: %s\n", cnnc_status_string(status), cnnc_last_error());
    return status != CNNC_OK;
}

static void print_row(const char *name, const float *v, int n)
{
    printf("%-8s", name);
    for (int i = 0; i < n; ++i)
        printf(" %.6f", v[i]);
    printf("\n");
}

int main(void)
{
    enum { N = 5 };
    const float x[N] = {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f};
    float y[N], dy[N] = {1, 1, 1, 1, 1}, dx[N];

    printf("cnnc %s, isa %s, %d thread(s)\n", cnnc_version(), cnnc_isa_name(), cnnc_get_num_threads());
    print_row("x", x, N);
    if (check(cnnc_relu_forward(N, x, y)))
        return 1;
    print_row("relu", y, N);
    if (check(cnnc_sigmoid_forward(N, x, y)))
        return 1;
    print_row("sigmoid", y, N);
    if (check(cnnc_sigmoid_backward(N, x, dy, dx)))
        return 1;
    print_row("dsigmoid", dx, N);
    if (check(cnnc_tanh_forward(N, x, y)))
        return 1;
    print_row("tanh", y, N);
    if (check(cnnc_gelu_forward(N, x, y, 0)))
        return 1;
    print_row("gelu", y, N);
    if (check(cnnc_softmax_forward(1, N, x, y)))
        return 1;
    print_row("softmax", y, N);

    /* Errors come back as a status and a message, never as a crash. */
    cnnc_status status = cnnc_relu_forward(-1, x, y);
    printf("relu(n = -1): %s (%s)\n", cnnc_status_string(status), cnnc_last_error());
    return status == CNNC_ERR_INVALID_ARGUMENT ? 0 : 1;
}
