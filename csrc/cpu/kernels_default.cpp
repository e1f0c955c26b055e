// CPU kernels for any CPU: at::vec's portable form.
#define CPU_CAPABILITY DEFAULT
#include "kernels.h"
