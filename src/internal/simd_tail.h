/* Helpers every simd_<isa>.h provides on top of its V_* macros (included by
 * each of them after those are defined). */
#ifndef CNNC_SIMD_TAIL_H
#define CNNC_SIMD_TAIL_H

/* Loads/stores of the vector at p when `rem` values remain (a partial vector
 * when rem < V_WIDTH): the templates' loops handle their tails with these. */
static inline vf v_load_tail(const float *p, int64_t rem) { return rem >= V_WIDTH ? V_LOAD(p) : V_LOADN(p, rem); }
static inline void v_store_tail(float *p, vf v, int64_t rem)
{
    if (rem >= V_WIDTH)
        V_STORE(p, v);
    else
        V_STOREN(p, v, rem);
}
#endif
