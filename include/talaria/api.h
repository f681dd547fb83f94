/* What every public header of libtalaria shares: the export marker (the library is built
 * with -fvisibility=hidden, so only what carries it is visible), C++ guards, the version. */
#ifndef TALARIA_API_H
#define TALARIA_API_H

#if defined(__GNUC__) && __GNUC__ >= 4
#define TAL_EXPORT __attribute__((visibility("default")))
#else
#define TAL_EXPORT
#endif

#ifdef __cplusplus
#define TAL_BEGIN_DECLS extern "C" {
#define TAL_END_DECLS   }
#else
#define TAL_BEGIN_DECLS
#define TAL_END_DECLS
#endif

TAL_BEGIN_DECLS

/* The library's version, "MAJOR.MINOR.PATCH" (the package's version). */
TAL_EXPORT const char *tal_version(void);

TAL_END_DECLS

#endif
