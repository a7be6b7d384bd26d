/* The choice of algorithm per pass.
 *
 * Algorithms (x NHWC, w (KH, KW, Cin/g, Cout), so that a patch of x in
 * (kh, kw, c) order is a row that multiplies w viewed as a (KH*KW*Cin/g) x
 * Cout matrix):
 *
 * - depthwise (groups == Cin, any multiplier): direct per-ISA kernels
 *   (src/conv/depthwise.c, src/kernels/<isa>/depthwise_<isa>.c), vectorized
 *   over channels. Each output pixel does only KH*KW*Cout multiply-adds, far
 *   too little work to amortize an im2col copy, and GEMMs with K = KH*KW are
 *   hopeless. Forward: parallel over bands of output rows, register tiles
 *   of 8 pixels that load each source vector of a kernel row once.
 *   Backward-data: a gather over the taps that reach each input pixel (one
 *   pass per stride phase), parallel over input rows (no write conflicts).
 *   Backward-weights (and db in the same pass): per-thread partial sums
 *   over row ranges, kept in registers along rows, reduced in thread order.
 * - 3x3, stride 1, dilation 1, groups 1, at least 16 channels on each side
 *   and enough tiles (winograd_chosen below has the exact rule, per pass:
 *   the few-channel tile kernels below keep 16 -> 16 forward and the weight
 *   gradient of fewer than 28 input channels): Winograd for all three
 *   passes, F(4x4, 3x3) where enough tiles amortize its larger transformed
 *   kernel, else F(2x2, 3x3) (winograd_tile below has the measurements).
 *   Backward-data is the forward convolution of dy with the flipped,
 *   channel-transposed kernel (whose transform is computed from w
 *   directly); backward-weights sums the products of the transformed x and
 *   dy tiles and transforms back. The GEMMs on the transformed tiles do 2.25
 *   (F(2x2): 16 per 2x2 tile) or 4 (F(4x4): 36 per 4x4 tile) times fewer
 *   multiply-adds than the direct convolution; the implicit GEMM already
 *   runs at about 95% of the FMA peak, so only fewer multiplications beat it
 *   (F(2x2) measured 1.2-2.3x on ResNet-18's 3x3 layers and the MNIST
 *   32->64 layer, each pass; F(4x4) 1.0-2x more where chosen). F(4x4)'s
 *   rounding error is about 10 times F(2x2)'s (about 20 float32 epsilons of
 *   the sum of |x| |w| against 1.5; benchmarks/bench_winograd.py --error).
 *   CNNC_WINOGRAD=0 in the environment disables Winograd, 2 (or 1) forces
 *   F(2x2) and 4 F(4x4) wherever they apply (tests run every path).
 * - everything else runs on the GEMM micro-kernels (src/conv/im2col_gemm.c,
 *   src/conv/implicit.c):
 *   * 1x1, stride 1, unpadded: x itself is the (N*H*W) x Cin matrix, so
 *     forward is one GEMM per group and per pixel chunk, backward-data is
 *     dY * W^T and backward-weights X^T * dY, all without any copy.
 *   * general forward: implicit GEMM. The weights are packed once per call
 *     into the micro-kernel's panels. When output rows are at least one
 *     micro-tile (MR pixels) wide, each thread copies the input rows that a
 *     band of output rows reads into a zero-padded buffer (about 256 KiB),
 *     or, when no tap needs padding (1x1 / 2 downsampling), reads x itself
 *     (1.05-1.25x on ResNet-18's 1x1 / 2 layers: the copy held every input
 *     row and column, three quarters of which no tap reads),
 *     and the micro-kernel reads MR consecutive output pixels straight from
 *     it (constant stride stride_w * Cin), one call per kernel row when the
 *     kernel row is contiguous (dilation_w == 1, groups == 1), else per tap:
 *     no im2col at all. With few channels per kernel row (3x3 on 1..21
 *     channels, the ResNet stem) one call per kernel row would load and store
 *     the C tile for a handful of multiply-adds, so a per-ISA tile kernel
 *     (src/internal/conv_tile_template.h) runs all the taps of a tile in
 *     registers from the bias instead, for rows of any width (the tile
 *     computes exactly the pixels it keeps). Otherwise narrower rows are cut
 *     into MR-pixel segments across rows, im2col'd and packed (one copy), in
 *     blocks that fit L2.
 *     Where a row's last partial segment would waste over a sixth of the
 *     row (7-pixel rows on AVX2's 6-pixel tiles, ResNet's last stage) and
 *     the kernel is long, all pixels are gathered and packed instead, in
 *     the GEMM's cache blocks (MC pixels x KC kernel columns).
 *     Where the ISA has indirect tiles (AVX2: six row pointers fit in
 *     registers, AVX-512's fourteen would not), rows that end in a short
 *     partial segment (14 and 7 pixels on AVX2) with kernel rows of at least
 *     64 floats run instead as tiles of consecutive pixels across rows and
 *     images, x read in place through a table of kernel-row pointers
 *     (padded rows read zeros or a zero-padded patch): no band copy, no
 *     half-speed partial tile (indirect_pays in src/conv/implicit.c).
 *   * backward-data, stride 1 with >= 64 channels per group: the gradient
 *     is itself a stride-1 convolution of dy with the spatially flipped,
 *     channel-transposed kernel and padding k_eff - 1 - pad, so it runs the
 *     implicit-GEMM forward (which packs that kernel straight from w): each
 *     thread writes whole dx pixels, nothing to scatter.
 *   * backward-data, stride > 1, dilation 1, either a kernel smaller than
 *     the stride, or >= 32 channels per group in dx and phase rows that
 *     are narrower than or (nearly) whole micro-tiles of a large register
 *     tile (AVX-512), or any rows where the ISA has the indirect tiles
 *     (AVX2; groups 1; phases_pay
 *     below has the rule): the sub-pixel decomposition
 *     (cnnc_conv_implicit_backward_data_phases). The dx pixels of one
 *     stride phase receive only the taps of one sub-kernel (2x2, 2x1, 1x2,
 *     1x1 for 3x3 / 2): each phase is a stride-1 convolution of dy, run by
 *     the implicit-GEMM forward with that sub-kernel flipped and
 *     channel-transposed, writing a strided subset of dx directly; no
 *     dcol, no col2im (1.1-1.2x on ResNet-18's 3x3 / 2 layers at 56 and
 *     28, at 1 and 2 threads; 1.2-1.4x with 7-pixel phase rows, which
 *     the tiles compute exactly). Without a bias (dx never has one) the first
 *     product of each tile initializes it: no zero fill to read back
 *     (1.04-1.1x more).
 *     CNNC_CONV_PHASES=1/0 forces it wherever it applies, or disables it.
 *   * backward-data otherwise: dcol = dY * W^T per tile (W^T packed once,
 *     dY read in place), then col2im. With at least as many images as
 *     threads each thread owns whole images and scatter-adds tile by tile.
 *     With fewer images (batch-1 inference of a transposed convolution)
 *     threads share each image: they compute the image's whole dcol, then
 *     gather it per input row.
 *   * backward-weights with few input channels or outputs (and at most 576
 *     rows of dW; tiled_weights_pay below has the rule,
 *     src/conv/tiled_weights.c the code): per-ISA register tiles of dW (a
 *     block of KH*KW*Cin/g rows x a few vectors of Cout) accumulate while the pixels of a zero-padded band of
 *     input rows and the matching dy rows stream by, with the bias gradient
 *     summed in the same pass; per-thread partials as below.
 *   * backward-weights otherwise: each thread accumulates
 *     im2col(tile)^T * dY(tile) (tiles of >= 256 pixels, the GEMM's inner
 *     dimension) into a private dW over its pixel range (part 0 directly
 *     into dw), then the partials are summed in part order: one part per
 *     thread, deterministic for a fixed thread count; in deterministic mode
 *     parts fixed by the shape (src/conv/partials.h), for any count.
 * - bias gradients are a channel sum of dy with the same partial scheme (fused
 *   into the tiled weight gradient where that runs).
 */
#include <stdlib.h>
#include <string.h>
#include "select.h"
#include "depthwise.h"
#include "gemm_kernels.h"
#include "im2col_gemm.h"
#include "implicit.h"
#include "partials.h"
#include "team.h"
#include "tiled_weights.h"
#include "winograd.h"

enum pass { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_WEIGHTS };

/* The thresholds of winograd_chosen. */
#define WINOGRAD_MIN_CHANNELS 16
#define WINOGRAD_MIN_TILES 48
#define WINOGRAD_MIN_WEIGHT_GRAD_CIN 28

/* Tiles of F(m x m, 3x3) over g's output, edge tiles whole. */
static double winograd_tiles(const struct cnnc_conv_geom *g, int m)
{
    return (double)g->n * (double)cnnc_ceil_div(g->oh, m) * (double)cnnc_ceil_div(g->ow, m);
}

/* F(4x4, 3x3) or F(2x2, 3x3) for a g that Winograd suits, from a cost model
 * fitted to measurements: per variant, alpha^2 Cin Cout (tiles + K), i.e.
 * its multiplications plus a per-call cost of the transformed kernel U (or
 * of the weight gradient's dU and its partial sums) worth K tiles. U is
 * written and then streamed past every tile block from L3 or memory; F(4x4)'s
 * is 36/16 of F(2x2)'s, so with few tiles F(2x2) wins. Measured (one thread,
 * AVX-512, each pass timed in turn with the others so that caches are as
 * cold as between a network's layers; F(2x2) time / F(4x4) time for
 * forward, backward-data, backward-weights):
 *   64 -> 64 @14, batch 128 (2,048 F(4x4) tiles)  1.04-1.37  1.01-1.07  1.02-1.11
 *   128 -> 128 @7, batch 128 (512)                1.20-1.32  1.13-1.34  1.14-1.39
 *   64 -> 64 @56, batch 8 (1,568)                 1.47       1.16       1.35
 *   128 -> 128 @28, batch 8 (392)                 1.26       1.21       1.98
 *   32 -> 64 @13, batch 32 (512)                  1.08       1.14       1.26
 *   256 -> 256 @14, batch 8 (128)                 0.82       0.86       1.13
 *   512 -> 512 @7, batch 8 (32)                   1.11       0.91       0.97
 *   256 -> 256 @14, batch 1 (16)                  0.25       0.77       0.98
 * (512 -> 512 @7 at batch 1 stays on the GEMM paths, WINOGRAD_MIN_TILES).
 * K = 184 tiles fits the forward passes (F(4x4) from about 130 tiles on);
 * the weight gradient, whose dU is not transformed per call from the
 * weights, gains from fewer tiles: K = 64 (F(4x4) from about 46 tiles on;
 * at 512 -> 512 @7, batch 8, F(4x4) measured 0.85-0.97 of F(2x2)'s speed
 * in the layer benchmark). */
#define WINOGRAD_KERNEL_TILES 184.0
#define WINOGRAD_GRAD_KERNEL_TILES 64.0
static int winograd_tile(const struct cnnc_conv_geom *g, enum pass pass)
{
    const double k = pass == PASS_BACKWARD_WEIGHTS ? WINOGRAD_GRAD_KERNEL_TILES : WINOGRAD_KERNEL_TILES;
    const double f2 = 16 * (winograd_tiles(g, 2) + k), f4 = 36 * (winograd_tiles(g, 4) + k);
    return f4 < f2 ? CNNC_WINOGRAD_F4 : CNNC_WINOGRAD_F2;
}

/* The Winograd variant (its output tile side, 0 for none) where it
 * applies and is faster, or the one forced by the environment variable
 * CNNC_WINOGRAD: "2" (or "1") F(2x2, 3x3) wherever it applies, "4" F(4x4,
 * 3x3) wherever it applies, "0" never. For backward-data, g is the forward
 * convolution that computes it (cnnc_conv_data_gradient_geom). */
static int winograd_chosen(const struct cnnc_conv_geom *g, enum pass pass)
{
    if (!cnnc_conv_winograd_applies(g))
        return 0;
    const char *env = getenv("CNNC_WINOGRAD");
    if (env && env[0] != '\0' && env[1] == '\0') {
        switch (env[0]) {
        case '0':
            return 0;
        case '1':
        case '2':
            return CNNC_WINOGRAD_F2;
        case '4':
            return CNNC_WINOGRAD_F4;
        default:
            break;
        }
    }
    /* Where it loses (measured against the other paths): with fewer than
     * 16 channels on either side the transforms and the GEMM's padding to
     * whole panels cost more than the multiplications saved; with few tiles
     * the per-call kernel transform is not amortized; and where edge tiles
     * would discard more than half of what they compute (outputs of 1 pixel
     * along an axis), the saving is gone. Per pass: the few-channel tile
     * kernels of the GEMM path keep 16 -> 16 forward and the weight gradient
     * of up to 24 input channels. */
    const int64_t th = cnnc_ceil_div(g->oh, 2), tw = cnnc_ceil_div(g->ow, 2);
    if (g->cin < WINOGRAD_MIN_CHANNELS || g->cout < WINOGRAD_MIN_CHANNELS || g->n * th * tw < WINOGRAD_MIN_TILES ||
        2 * g->oh * g->ow < 4 * th * tw)
        return 0;
    int chosen;
    switch (pass) {
    case PASS_FORWARD:
        chosen = g->cin >= 2 * WINOGRAD_MIN_CHANNELS || g->cout >= 2 * WINOGRAD_MIN_CHANNELS;
        break;
    case PASS_BACKWARD_WEIGHTS:
        chosen = g->cin >= WINOGRAD_MIN_WEIGHT_GRAD_CIN;
        break;
    default:
        chosen = 1;
    }
    return chosen ? winograd_tile(g, pass) : 0;
}


/* Phase output rows of width pw run in MR-pixel segments, and a partial
 * last segment costs a whole one: the phases win only where that waste is
 * small (measured at batch 8-32 with the 14 x 32 AVX-512 micro-kernel:
 * 1.05-1.25x faster with rows that are whole segments, up to 1.6x slower
 * with 15-pixel rows on 14-pixel segments), and only with enough dx
 * channels to fill the micro-kernel's columns (2.7x slower for 3). Rows
 * narrower than a segment go through the tiles, which compute just their
 * pixels, or the packed sweep (1.2-1.4x over the dcol GEMM for 3x3 / 2 on
 * 14x14 inputs, 7-pixel phase rows). With the smaller register tiles
 * (AVX2's 6 x 16: 1.1-1.3x slower on ResNet-18's 3x3 / 2 layers) each
 * call's C tile and A rows weigh more, and the dcol GEMM, which writes its
 * tiles once without reading them, stayed ahead; with the indirect tiles
 * (cnnc_conv_implicit_has_indirect, groups 1), which take phase rows that
 * end in a short partial tile across rows, the phases are ahead again on
 * AVX2: 1.04-1.07x over the dcol GEMM on ResNet's 3x3 / 2 layers at 28
 * and 14 (14- and 7-pixel phase rows), 1.03-1.05x at 56 (28-pixel rows, in
 * bands). A kernel smaller than its
 * stride (1x1 / 2) leaves most phases without taps: they are a fill, and
 * the one GEMM writes its dx pixels in place where the dcol GEMM would
 * zero dx, store dcol and scatter it back (1.2-1.35x at 64 -> 128, on par
 * or better at more channels on AVX-512; on AVX2 from 256 dx channels on
 * the dcol GEMM stays ahead, by 1.1-1.2x).
 * CNNC_CONV_PHASES=1/0 in the environment forces the decomposition wherever
 * it applies, or disables it (tests run both). */
#define PHASES_MIN_TILE 256
#define PHASES_SMALL_TILE_MAX_CIN 64
static int phases_pay(const struct cnnc_conv_geom *g)
{
    if (g->dh != 1 || g->dw != 1 || (g->sh == 1 && g->sw == 1))
        return 0;
    const char *env = getenv("CNNC_CONV_PHASES");
    if (env && (env[0] == '0' || env[0] == '1'))
        return env[0] == '1';
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    const int64_t mr = kern->mr;
    const int large_tile = mr * kern->nr >= PHASES_MIN_TILE;
    if (g->kh < g->sh || g->kw < g->sw)
        return large_tile || g->cin_g <= PHASES_SMALL_TILE_MAX_CIN;
    if (g->cin_g < 32)
        return 0;
    if (!large_tile)
        return g->groups == 1 && cnnc_conv_implicit_has_indirect();
    for (int64_t rw = 0; rw < g->sw; ++rw) {
        int64_t q0, q1;
        cnnc_conv_phase_range(g->w, g->pl, g->sw, rw, &q0, &q1);
        const int64_t pw = q1 - q0 + 1;
        if (pw > mr && cnnc_ceil_div(pw, mr) * mr * 8 > pw * 9)
            return 0;
    }
    return 1;
}

/* The weight gradient through the tiles (src/conv/tiled_weights.c) reads x
 * in place from zero-padded bands, where im2col + GEMM copies the patches,
 * pads the rows of dW (KH*KW*Cin/g) up to the GEMM's MR and packs all of
 * dy: the tiles win (measured, batch 8 to 32) for few input channels (5x
 * for 1 -> 32 3x3, 1.5x for the 3 -> 64 7x7 ResNet stem) and for up to 128
 * outputs per group (1.2x for 64 -> 64 3x3), as long as dW has at most
 * WTILE_MAX_ROWS rows. With more rows or outputs, each pixel's broadcast
 * operands are re-read once per block of dW, and the GEMM's packed panels
 * do better. The bands copy
 * whole input rows, so with many channels a kernel smaller than its stride
 * (1x1 / 2 downsampling) would copy and stream pixels no tap reads, where
 * im2col gathers only the ones it needs. Bands never span images, so tiny
 * output images (a few pixels each) would pay a band and a pass over the
 * dW blocks per image, where im2col tiles span images. */
#define WTILE_MAX_ROWS 576
#define WTILE_FEW_CIN 32
#define WTILE_MAX_COUT 128
#define WTILE_MIN_PIXELS 8
static int tiled_weights_pay(const struct cnnc_conv_geom *g)
{
    const int64_t kg = g->kh * g->kw * g->cin_g;
    if (kg > WTILE_MAX_ROWS || g->oh * g->ow < WTILE_MIN_PIXELS)
        return 0;
    if (g->cin_g < WTILE_FEW_CIN)
        return 1;
    return g->cout_g <= WTILE_MAX_COUT && g->kh >= g->sh && g->kw >= g->sw;
}

cnnc_status cnnc_conv_select_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                     const float *bias, float *y)
{
    if (cnnc_conv_is_depthwise(g))
        return cnnc_conv_depthwise_forward(g, x, w, bias, NULL, y);
    const int tile = winograd_chosen(g, PASS_FORWARD);
    if (tile)
        return cnnc_conv_winograd_forward(g, tile, x, w, 0, NULL, bias, NULL, y);
    const int threads = cnnc_conv_threads(g);
    if (cnnc_conv_is_pointwise(g))
        return cnnc_conv_gemm_pointwise_forward(g, threads, x, w, bias, y);
    return cnnc_conv_implicit_forward(g, threads, x, w, bias, y);
}

/* Whether the pointwise GEMM of g takes the output stage in its tiles. */
static int fused_pointwise(const struct cnnc_conv_geom *g)
{
    return cnnc_conv_is_pointwise(g) && g->groups == 1 && !cnnc_conv_is_depthwise(g) && !winograd_chosen(g, PASS_FORWARD);
}

/* The Winograd variant whose transformed kernel a loaded model keeps for
 * g's geometry (0 for none): the forward's choice at the smallest batch
 * that takes Winograd at all (it depends on the batch only through the
 * number of tiles, which grows with it). A batch that takes the other
 * variant transforms w per call, as without the packed kernel. */
static int winograd_packed_tile(const struct cnnc_conv_geom *g)
{
    if (cnnc_conv_is_depthwise(g))
        return 0;
    struct cnnc_conv_geom smallest = *g;
    smallest.n = cnnc_ceil_div(WINOGRAD_MIN_TILES, cnnc_ceil_div(g->oh, 2) * cnnc_ceil_div(g->ow, 2));
    return winograd_chosen(&smallest, PASS_FORWARD);
}

/* Implicit GEMM: what cnnc_conv_select_forward runs when nothing else does. */
static int implicit_forward(const struct cnnc_conv_geom *g)
{
    return !cnnc_conv_is_depthwise(g) && !winograd_chosen(g, PASS_FORWARD) && !cnnc_conv_is_pointwise(g);
}

cnnc_status cnnc_conv_select_pack(const struct cnnc_conv_geom *g, const float *w, struct cnnc_conv_packed *packed)
{
    memset(packed, 0, sizeof *packed);
    packed->kern = CNNC_PICK(cnnc_gemm_kernels);
    if (fused_pointwise(g)) {
        CNNC_TRY(cnnc_gemm_pack_b_once(CNNC_NO_TRANS, g->cin, g->cout, w, g->cout, &packed->pointwise));
        packed->bytes = cnnc_gemm_packed_b_bytes(&packed->pointwise);
        return CNNC_OK;
    }
    /* A geometry that takes Winograd from some batch on, and the implicit
     * GEMM below it, gets both. */
    /* The transformed kernel of a geometry whose batch 1 takes another
     * path is made by the first call that takes Winograd
     * (cnnc_conv_select_pack_late): a model run one image at a time never
     * holds it (ResNet-50's 512-channel 3x3 layers: 16/9 of their 28 MiB). */
    packed->winograd_tile = winograd_packed_tile(g);
    struct cnnc_conv_geom one = *g;
    one.n = 1;
    if (packed->winograd_tile && winograd_chosen(&one, PASS_FORWARD))
        CNNC_TRY(cnnc_conv_winograd_pack(g, packed->winograd_tile, w, &packed->winograd, &packed->bytes));
    if (implicit_forward(g)) {
        int64_t floats;
        CNNC_TRY(cnnc_conv_implicit_pack(g, w, &packed->implicit, &floats));
        packed->bytes += (size_t)floats * sizeof(float);
    }
    return CNNC_OK;
}

int cnnc_conv_select_pack_late_wanted(const struct cnnc_conv_geom *g, const struct cnnc_conv_packed *packed)
{
    return packed->winograd_tile && packed->kern == CNNC_PICK(cnnc_gemm_kernels) &&
           !__atomic_load_n(&packed->winograd, __ATOMIC_ACQUIRE) &&
           winograd_chosen(g, PASS_FORWARD) == packed->winograd_tile;
}

cnnc_status cnnc_conv_select_pack_late(const struct cnnc_conv_geom *g, const float *w, struct cnnc_conv_packed *packed)
{
    if (!cnnc_conv_select_pack_late_wanted(g, packed))
        return CNNC_OK;
    float *u = NULL, *expected = NULL;
    size_t bytes;
    CNNC_TRY(cnnc_conv_winograd_pack(g, packed->winograd_tile, w, &u, &bytes));
    /* Concurrent calls may both transform: the first to publish wins. */
    if (__atomic_compare_exchange_n(&packed->winograd, &expected, u, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&packed->bytes, bytes, __ATOMIC_RELAXED);
    else
        cnnc_free(u);
    return CNNC_OK;
}

int cnnc_conv_select_packed_covers(const struct cnnc_conv_geom *g, const struct cnnc_conv_packed *packed)
{
    if (!packed || packed->kern != CNNC_PICK(cnnc_gemm_kernels) || cnnc_conv_is_depthwise(g))
        return 0;
    if (fused_pointwise(g))
        return packed->pointwise.data != NULL;
    const int tile = winograd_chosen(g, PASS_FORWARD);
    if (tile)
        return __atomic_load_n(&packed->winograd, __ATOMIC_ACQUIRE) != NULL && packed->winograd_tile == tile;
    return implicit_forward(g) && packed->implicit != NULL;
}

void cnnc_conv_packed_free(struct cnnc_conv_packed *packed)
{
    if (!packed)
        return;
    cnnc_gemm_packed_b_free(&packed->pointwise);
    cnnc_free(packed->implicit);
    cnnc_free(packed->winograd);
    memset(packed, 0, sizeof *packed);
}

/* The output stage over the whole of y, after a convolution that added
 * the bias itself. */
static void stage_after(const struct cnnc_conv_geom *g, const struct cnnc_gemm_epilogue *stage, float *y)
{
    struct cnnc_gemm_epilogue rest;
    if (cnnc_gemm_epilogue_after_bias(stage, &rest))
        CNNC_PICK(cnnc_gemm_kernels)->epilogue(&rest, y, g->cout, g->n * g->oh * g->ow, g->cout, 0, 0);
}

cnnc_status cnnc_conv_select_forward_fused(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                           const struct cnnc_conv_packed *packed,
                                           const struct cnnc_gemm_epilogue *stage, float *y)
{
    const int current = packed && packed->kern == CNNC_PICK(cnnc_gemm_kernels);
    if (fused_pointwise(g))
        return cnnc_conv_gemm_pointwise_forward_fused(g, cnnc_conv_threads(g), x, w,
                                                      current ? &packed->pointwise : NULL, stage, y);
    if (cnnc_conv_is_depthwise(g))
        return cnnc_conv_depthwise_forward(g, x, w, stage->bias, stage, y);
    const int tile = winograd_chosen(g, PASS_FORWARD);
    if (tile)
        return cnnc_conv_winograd_forward(g, tile, x, w, 0,
                                          current && packed->winograd_tile == tile
                                              ? __atomic_load_n(&packed->winograd, __ATOMIC_ACQUIRE)
                                              : NULL,
                                          stage->bias, stage, y);
    if (implicit_forward(g))
        return cnnc_conv_implicit_forward_fused(g, cnnc_conv_threads(g), x, w, current ? packed->implicit : NULL,
                                                stage->bias, stage, y);
    CNNC_TRY(cnnc_conv_select_forward(g, x, w, stage->bias, y));
    stage_after(g, stage, y);
    return CNNC_OK;
}

cnnc_status cnnc_conv_select_backward_data(const struct cnnc_conv_geom *g, const float *w, const float *dy,
                                           const float *bias, float *dx)
{
    if (cnnc_conv_is_depthwise(g))
        return cnnc_conv_depthwise_backward_data(g, w, dy, bias, dx);
    if (g->sh == 1 && g->sw == 1) {
        const struct cnnc_conv_geom t = cnnc_conv_data_gradient_geom(g);
        const int tile = winograd_chosen(&t, PASS_BACKWARD_DATA);
        if (tile)
            return cnnc_conv_winograd_forward(&t, tile, dy, w, 1, NULL, bias, NULL, dx);
    }
    const int threads = cnnc_conv_threads(g);
    if (cnnc_conv_is_pointwise(g))
        return cnnc_conv_gemm_pointwise_backward_data(g, threads, w, dy, bias, dx);
    /* The gather form needs enough input channels to fill the GEMM's
     * columns; with few (the first layer of an image network) the dcol
     * product, whose columns are KH*KW*Cin/g, does better. */
    if (g->sh == 1 && g->sw == 1 && g->cin_g >= 64)
        return cnnc_conv_implicit_backward_data(g, threads, w, dy, bias, dx);
    if (phases_pay(g))
        return cnnc_conv_implicit_backward_data_phases(g, threads, w, dy, bias, dx);
    /* The two forms round differently, so the choice follows the team limit,
     * not the threads running now, and in deterministic mode the choice a
     * team of CNNC_DETERMINISTIC_PARTS would make, whatever the team. */
    if ((cnnc_get_deterministic() ? CNNC_DETERMINISTIC_PARTS : cnnc_conv_partition_threads(g)) <= g->n)
        return cnnc_conv_gemm_backward_data_scatter(g, threads, w, dy, bias, dx);
    return cnnc_conv_gemm_backward_data_shared(g, threads, w, dy, bias, dx);
}

cnnc_status cnnc_conv_select_backward_weights(const struct cnnc_conv_geom *g, const float *x, const float *dy,
                                              float *dw, float *db)
{
    if (cnnc_conv_is_depthwise(g))
        return cnnc_conv_depthwise_backward_weights(g, x, dy, dw, db);
    const int tile = winograd_chosen(g, PASS_BACKWARD_WEIGHTS);
    if (tile) {
        CNNC_TRY(cnnc_conv_winograd_backward_weights(g, tile, x, dy, dw));
        if (db)
            CNNC_TRY(cnnc_conv_channel_sum(g->n * g->oh * g->ow, g->cout, dy, db));
        return CNNC_OK;
    }
    const int threads = cnnc_conv_threads(g);
    if (tiled_weights_pay(g))
        return cnnc_conv_tiled_backward_weights(g, threads, x, dy, dw, db);
    return cnnc_conv_gemm_backward_weights(g, threads, x, dy, dw, db);
}
