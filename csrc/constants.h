/* Constants of the scalar kernels, written once in long double precision so the
   float64 kernels (evaluated in long double) lose nothing; the float32 kernels
   (evaluated in double) round them once. */
#ifndef PYACT_CONSTANTS_H
#define PYACT_CONSTANTS_H

#define PYACT_SELU_ALPHA 1.6732632423543772848170429916717L
#define PYACT_SELU_SCALE 1.0507009873554804934193349852946L
/* scale * alpha of SELU, and its low part as a double pair: scale * alpha -
   (double)(scale * alpha), so that y + scale*alpha keeps its accuracy where it cancels
   (y -> -scale*alpha).  A double, not the remainder of a long double: that depends
   on the long double (x87's 64 bits, aarch64's 113). */
#define PYACT_SELU_SCALED_ALPHA 1.75809934084737685994021752081231934L
#define PYACT_SELU_SCALED_ALPHA_DLO 0x1.05161b045a1fep-56
#define PYACT_INV_SQRT2 0.70710678118654752440084436210484904L
#define PYACT_FOUR_OVER_PI 1.2732395447351626861510701069801149L
#define PYACT_INV_SQRT_2PI 0.39894228040143267793994605993438187L
/* 2 sqrt(2/pi) and the cubic coefficient of the tanh form of GELU */
#define PYACT_GELU_K1 1.5957691216057307117597842397375L
#define PYACT_GELU_CUBIC 0.044715L
/* softsign is +-1 beyond 2**60 in float32 and float64 */
#define PYACT_SOFTSIGN_SATURATES_ABOVE 1152921504606846976.0L
/* softsign's float64 backward keeps 1 / (1 + |x|)^2 as an exact pair below this |x|
   (its square is above 2^-968: two_prod's error term stays exact) */
#define PYACT_SOFTSIGN_PAIR_BELOW 0x1p484

/* The softmax family's vjp (axis.pxi): a y below PYACT_VJP_TINY_Y is scaled up for
   the product with g - sum(g y), and the result scaled back last. */
#define PYACT_VJP_TINY_Y 0x1p-900
#define PYACT_VJP_Y_UP 0x1p200
#define PYACT_VJP_Y_DOWN 0x1p-200

#endif
