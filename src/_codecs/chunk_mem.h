/* Memory for the engine's per-channel records, in chunks of CR_CHUNK bytes (2 MiB)
 * aligned on CR_CHUNK, which Linux may back with transparent huge pages
 * (madvise(MADV_HUGEPAGE): honoured where /sys/kernel/mm/transparent_hugepage/enabled
 * is "always" or "madvise", the default of most distributions).
 *
 * Why: every 20 ms tick touches a few cache lines of every recording's record (its
 * fields, the start of its ring, its held-back media).  With 4 KiB pages each record
 * costs a TLB entry or more per tick; a few thousand records overflow the TLB, and
 * every tick then pays a page walk per record (in a virtual machine, a two-level walk).
 * Records packed into 2 MiB pages need one TLB entry per hundred records.  Where huge
 * pages are not available the chunks are ordinary memory and nothing else changes.
 * The price: a huge page is resident as a whole, so every record's untouched bytes
 * count too; hence the hint only where asked (huge = 1): the engine leaves its first
 * chunk in small pages, so an engine with a few calls costs what they touch, not 2 MiB. */
#ifndef CALLRECORDER_CHUNK_MEM_H
#define CALLRECORDER_CHUNK_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CR_CHUNK ((size_t)2 << 20)

#if defined(__linux__)
#include <sys/mman.h>

/* A zeroed chunk of CR_CHUNK bytes aligned on CR_CHUNK (with huge: advised for huge
 * pages), or NULL. */
static inline void *cr_chunk_alloc(int huge) {
    /* map twice the size and keep the aligned half: mmap gives page alignment only */
    char *raw = (char *)mmap(NULL, 2 * CR_CHUNK, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == (char *)MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + CR_CHUNK - 1) & ~(uintptr_t)(CR_CHUNK - 1);
    char *p = (char *)at;
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    if (p + CR_CHUNK < raw + 2 * CR_CHUNK)
        munmap(p + CR_CHUNK, (size_t)(raw + 2 * CR_CHUNK - (p + CR_CHUNK)));
#ifdef MADV_HUGEPAGE
    if (huge)
        madvise(p, CR_CHUNK, MADV_HUGEPAGE); /* a hint: refused or ignored, pages stay small */
#endif
    return p;
}

static inline void cr_chunk_free(void *p) {
    if (p != NULL)
        munmap(p, CR_CHUNK);
}

#else

static inline void *cr_chunk_alloc(int huge) {
    void *p = NULL;
    (void)huge;
    if (posix_memalign(&p, CR_CHUNK, CR_CHUNK) != 0)
        return NULL;
    return memset(p, 0, CR_CHUNK);
}

static inline void cr_chunk_free(void *p) { free(p); }

#endif
#endif
