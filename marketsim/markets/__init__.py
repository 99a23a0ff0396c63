"""Markets: goods, their clearing mechanisms and the numba kernels that clear them."""
