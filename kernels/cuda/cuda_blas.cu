/*
 * cuda_blas.cu: dlopen()s cuBLAS and cuBLASLt and fills `cuda_blas` (see
 * cuda_blas.h for why they are not linked). The libraries are the ones of
 * the CUDA version deediff was compiled with (libcublas.so.<major>), found
 * on the executable's run path (-rpath CUDA_HOME/lib64), then on the
 * loader's usual path. They stay open until the process exits.
 */
#include <dlfcn.h>

#include "cuda_blas.h"
#include "cuda_c_headers.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)
#define CUBLASLT_SONAME "libcublasLt.so." STR(CUBLAS_VER_MAJOR)

CudaBlas cuda_blas;

static int open_library(void **handle, const char *soname)
{
    *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!*handle)
        return err_set("--backend cuda: cannot load %s (%s); install the CUDA %d cuBLAS "
                       "libraries or add their folder to LD_LIBRARY_PATH",
                       soname, dlerror(), CUBLAS_VER_MAJOR);
    return 0;
}

/* the address of `name` in lib, or NULL with err_set */
static void *find_symbol(void *lib, const char *soname, const char *name)
{
    void *fn = dlsym(lib, name);
    if (!fn) err_set("--backend cuda: %s has no %s (%s)", soname, name, dlerror());
    return fn;
}

int cuda_blas_load(void)
{
    static int loaded;
    if (loaded) return 0;
    void *cublas, *lt;
    if (open_library(&cublas, CUBLAS_SONAME) || open_library(&lt, CUBLASLT_SONAME)) return -1;
    const char *cublas_soname = CUBLAS_SONAME, *lt_soname = CUBLASLT_SONAME;
    CudaBlas b;
#define CUDA_BLAS_FIND(lib, name)                                                        \
    b.name = reinterpret_cast<decltype(b.name)>(find_symbol(lib, lib##_soname, #name));   \
    if (!b.name) return -1;
    CUDA_BLAS_FUNCTIONS(CUDA_BLAS_FIND)
    CUDA_BLAS_FIND(cublas, cublasGemmEx)
#undef CUDA_BLAS_FIND
    cuda_blas = b;
    loaded = 1;
    return 0;
}
