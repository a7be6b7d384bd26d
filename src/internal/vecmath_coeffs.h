/* Constants of the polynomial approximations of vecmath.h, kept apart so
 * that the tests can name them; every ISA path evaluates the
 * same approximation and differs only by rounding (FMA or not).
 *
 * The polynomials are weighted least-squares fits (iteratively reweighted
 * towards minimax) on Chebyshev nodes, computed in double precision for this
 * library; each comment gives the fit's relative error in exact arithmetic. */
#ifndef CNNC_VECMATH_COEFFS_H
#define CNNC_VECMATH_COEFFS_H

/* exp: x = n ln2 + r, |r| <= ln2/2, exp(r) = 1 + r + r^2 P(r).
 * ln2 is split so that n * CNNC_LN2_HI is exact for |n| < 2^9. Fit: 3e-9. */
#define CNNC_LOG2E 1.44269504088896341f
#define CNNC_LN2_HI 0.693145751953125f
#define CNNC_LN2_LO 1.42860682030941723212e-6f
#define CNNC_EXP_P0 0.4999999403953552f
#define CNNC_EXP_P1 0.1666651964187622f
#define CNNC_EXP_P2 0.04166843742132187f
#define CNNC_EXP_P3 0.008368821814656258f
#define CNNC_EXP_P4 0.0013812078395858407f
/* Inputs are clamped to this range first: below it exp underflows to 0 and
 * above it to +inf, and the clamp keeps the 2^n scaling exact. */
#define CNNC_EXP_LO (-104.0f)
#define CNNC_EXP_HI 89.0f

/* expm1 for |x| < CNNC_EXPM1_SMALL: x + x^2 Q(x). Fit: 3e-9. Outside that
 * range exp(x) - 1 loses no significant bits. */
#define CNNC_EXPM1_SMALL 0.5f
#define CNNC_EXPM1_Q0 0.5000000596046448f
#define CNNC_EXPM1_Q1 0.166666641831398f
#define CNNC_EXPM1_Q2 0.041665323078632355f
#define CNNC_EXPM1_Q3 0.008333507925271988f
#define CNNC_EXPM1_Q4 0.0013997139176353812f
#define CNNC_EXPM1_Q5 0.00019868844537995756f

/* erfc(z) for z >= 0: t = 1 / (1 + z/2), u = (12 t - 7) / 5 in [-1, 1],
 * erfc(z) = t exp(-z^2 + E(u)). Relative accuracy holds over the whole range,
 * including the far tail that 1 - erf(z) cannot resolve. Fit: 6e-9 (in the
 * exponent). Beyond z = 10 erfc underflows float. */
#define CNNC_ERFC_ZMAX 10.0f
#define CNNC_ERFC_E0 (-0.5585953551082041f)
#define CNNC_ERFC_E1 0.5703071077393835f
#define CNNC_ERFC_E2 0.0157451454213417f
#define CNNC_ERFC_E3 (-0.029470402158668016f)
#define CNNC_ERFC_E4 (-0.0010461362553697007f)
#define CNNC_ERFC_E5 0.0037077165021501685f
#define CNNC_ERFC_E6 (-0.00027429587975366654f)
#define CNNC_ERFC_E7 (-0.0005346449874553127f)
#define CNNC_ERFC_E8 0.00012793923585452394f
#define CNNC_ERFC_E9 5.5006035715440826e-05f
#define CNNC_ERFC_E10 (-2.2075908519908483e-05f)

/* log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), s = (m - 1) / (m + 1),
 * log(m) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...), |s| <= 0.1716: the
 * Taylor series itself, truncated after s^8 (error 5e-9). */
#define CNNC_SQRT2 1.41421356237309505f
#define CNNC_LN2 0.693147180559945309f

#endif
