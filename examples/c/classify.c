/* Classifies one image with a model saved from Python by model.save:
 *
 *     classify MODEL IMAGE [SCALE]
 *
 * IMAGE is a binary PGM (P5, grey) or PPM (P6, colour) with 8-bit samples,
 * or raw float32 values (any other file) holding exactly one input of the
 * model's shape. PGM/PPM pixels are multiplied by SCALE (default 1/255),
 * resized to the model's height and width (nearest pixel) and converted to
 * its channel count (grey repeated, or colour averaged). Prints the five
 * highest outputs with their class indices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cnnc.h>

static int fail(const char *what, cnnc_status status)
{
    fprintf(stderr, "%s: %s: %s\n", what, cnnc_status_string(status), cnnc_last_error());
    return 1;
}

/* Next header number of a PNM file, skipping whitespace and # comments. */
static long pnm_number(FILE *f)
{
    int c = fgetc(f);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#') {
        if (c == '#') while (c != '\n' && c != EOF) c = fgetc(f);
        c = fgetc(f);
    }
    long v = 0;
    int digits = 0;
    while (c >= '0' && c <= '9' && digits < 9) {
        v = v * 10 + (c - '0');
        ++digits;
        c = fgetc(f);
    }
    if (!digits || (c != ' ' && c != '\t' && c != '\n' && c != '\r')) return -1;
    return v;
}

/* Reads IMAGE into x (h x w x c floats); returns 0 on success. */
static int read_image(const char *path, int64_t h, int64_t w, int64_t c, float scale, float *x)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    char magic[2] = {0, 0};
    int is_pnm = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6');
    if (!is_pnm) {
        /* Raw float32: exactly one input. */
        rewind(f);
        size_t n = (size_t)(h * w * c);
        size_t got = fread(x, sizeof *x, n, f);
        int extra = fgetc(f) != EOF;
        fclose(f);
        if (got != n || extra) {
            fprintf(stderr, "%s: a raw input must hold exactly %zu float32 values\n", path, n);
            return -1;
        }
        return 0;
    }
    int pc = magic[1] == '6' ? 3 : 1;
    long iw = pnm_number(f), ih = pnm_number(f), maxval = pnm_number(f);
    if (iw < 1 || ih < 1 || maxval < 1 || maxval > 255 || iw > 65536 || ih > 65536) {
        fprintf(stderr, "%s: unsupported PGM/PPM header (8-bit binary images only)\n", path);
        fclose(f);
        return -1;
    }
    size_t bytes = (size_t)iw * (size_t)ih * (size_t)pc;
    unsigned char *pixels = malloc(bytes);
    if (!pixels || fread(pixels, 1, bytes, f) != bytes) {
        fprintf(stderr, "%s: truncated image\n", path);
        free(pixels);
        fclose(f);
        return -1;
    }
    fclose(f);
    for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
            const unsigned char *p = pixels + ((size_t)(i * ih / h) * (size_t)iw + (size_t)(j * iw / w)) * (size_t)pc;
            for (int64_t k = 0; k < c; ++k) {
                float v;
                if (pc == 1) v = p[0];
                else if (c == 3) v = p[k];
                else v = (p[0] + p[1] + p[2]) / 3.0f;
                x[(i * w + j) * c + k] = v * scale;
            }
        }
    free(pixels);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL IMAGE [SCALE]\n", argv[0]);
        return 2;
    }
    float scale = argc == 4 ? strtof(argv[3], NULL) : 1.0f / 255.0f;
    cnnc_model *model;
    cnnc_status s = cnnc_model_load(argv[1], &model);
    if (s != CNNC_OK) return fail(argv[1], s);
    int rank, out_rank;
    int64_t shape[8], out_shape[8];
    if ((s = cnnc_model_input_shape(model, &rank, shape)) != CNNC_OK ||
        (s = cnnc_model_output_shape(model, &out_rank, out_shape)) != CNNC_OK) {
        cnnc_model_free(model);
        return fail("model", s);
    }
    if (rank != 3 || out_rank != 1) {
        fprintf(stderr, "expected a model from images (H, W, C) to class scores, got input rank %d, output rank %d\n",
                rank, out_rank);
        cnnc_model_free(model);
        return 1;
    }
    int64_t classes = out_shape[0];
    float *x = malloc((size_t)(shape[0] * shape[1] * shape[2]) * sizeof *x);
    float *y = malloc((size_t)classes * sizeof *y);
    int status = 1;
    if (x && y && read_image(argv[2], shape[0], shape[1], shape[2], scale, x) == 0) {
        if ((s = cnnc_model_predict(model, 1, x, y)) != CNNC_OK) {
            fail("predict", s);
        } else {
            printf("class  score\n");
            for (int rankk = 0; rankk < 5 && rankk < classes; ++rankk) {
                int64_t best = -1;
                for (int64_t k = 0; k < classes; ++k)
                    if (y[k] == y[k] && (best < 0 || y[k] > y[best])) best = k;
                if (best < 0) break;
                printf("%5lld  %.6f\n", (long long)best, y[best]);
                y[best] = 0.0f / 0.0f;  /* NaN: never picked again */
            }
            status = 0;
        }
    }
    free(x);
    free(y);
    cnnc_model_free(model);
    return status;
}
