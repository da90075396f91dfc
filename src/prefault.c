/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * prefault.c - keep the next pages of an allocator's arena resident, on a
 * helper thread, so that the writer finds them mapped.
 *
 * Why.  An allocator page becomes memory when it is first touched: a page
 * fault, a page taken and cleared by the kernel, a page-table entry.  The
 * kernel's zram gets its pages from the page allocator and writes them
 * through the kernel's own mapping: no fault, no new mapping.  In user
 * space the fault is most of what a first write of a page costs, and it
 * is the per-page work, not the trap (MADV_POPULATE_WRITE in batches
 * costs the same per page).  An incompressible page needs a whole new
 * page each: its write pays lz4 plus that fault, where kernel zram pays
 * lz4 plus a copy.  Moved to a helper, the fault is paid on another CPU
 * while the writer compresses, the way the kernel's free page lists are
 * filled ahead of the allocations that use them (docs/benchmarks.md,
 * "Incompressible pages", has the figures and their commands).
 *
 * What.  The arena is handed out from the bottom up to its "top" (vacant
 * runs below it are reused first; see zsmalloc.c); the next pages to be
 * used are the ones just above top.  The helper keeps [top, top + ahead)
 * resident with MADV_POPULATE_WRITE, 16 pages a call, and sleeps when it
 * is there.  The allocator tells it every move of top
 * (uz_prefault_top); it wakes the helper when less than half the window is
 * left.  When top moves down (the last run was freed and its pages given
 * back), the window is recomputed from the new top, and the resident
 * pages now beyond it are released, with the helper's lock held (the
 * helper holds it across each populate call), so none is left resident
 * and uncounted.
 *
 * How much.  ahead = committed pages / 512, within 16..256 pages (64 KiB to
 * 1 MiB): at most 0.2% of what the device holds beyond a constant 64 KiB
 * (zsmalloc counts a page of compressed objects as a quarter: what it
 * passes as `used` is weighted by how fast a writer consumes pages,
 * zsmalloc.c's window_basis)
 * (a larger window makes the writes no faster and the footprint larger),
 * so the footprint bounds of the store keep their meaning.  The pages of
 * the window are resident memory the device holds: uz_prefault_bytes()
 * reports them and the allocator adds them to its metadata, so the
 * footprint (and the bench's rss cross-check) include them.  A page the
 * helper populates is only ever one above top: the allocator's own pages
 * are never touched (MADV_POPULATE_WRITE on a present page changes
 * nothing, and a page of the allocator's is present or released by it).
 * One race is left, harmless: if top moves up past pages the helper is
 * populating and the allocator releases those pages again before the call
 * returns, up to 16 pages of a vacant run may be resident until reused or
 * released again (their contents are zeros either way).
 *
 * Fork.  Only the forking thread lives on in a child (nbdkit makes the
 * device before it forks into the background).  A pthread_atfork handler
 * counts forks; a prefaulter whose thread belongs to an older generation
 * has none: the next move of top starts a new one in the child (its lock
 * and condition variable made anew: the helper may have held the lock
 * when the parent forked), and stop has nothing to join.
 *
 * At rest.  A whole compaction (an explicit one, or the one a settling
 * pass ends with) calls uz_prefault_rest: the window's pages are released
 * and the helper keeps none until top next moves, so an idle device holds
 * no pages ahead of its writes.  The first write that needs a new page
 * faults it in itself; the window is back after the helper's next walk.
 *
 * The helper is best effort: no thread (pthread_create failed, or
 * UZ_PREFAULT=0 in the environment, for measuring without it) means the
 * writer faults its pages in itself, as before.
 */
#define _GNU_SOURCE
#include "prefault.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

#define PF_PAGE 4096u
#define PF_CHUNK 16u
#define PF_MIN 16u
#define PF_MAX 256u

static _Atomic unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void) { atomic_fetch_add(&fork_gen, 1); }
static void atfork_register(void) { (void)pthread_atfork(NULL, NULL, after_fork_child); }

static void *helper(void *arg)
{
    struct uz_prefault *pf = arg;
    pthread_mutex_lock(&pf->lock);
    while (!pf->stop) {
        uint32_t top = atomic_load(&pf->top), d = atomic_load(&pf->done);
        uint32_t start = d > top ? d : top;
        uint32_t end = top + atomic_load(&pf->ahead);
        if (end > pf->npages)
            end = pf->npages;
        if (start >= end || atomic_load(&pf->resting)) {
            /* Say so, then look at top once more: either this sees the
             * allocator's last move or the allocator sees the flag and
             * signals (under the lock, so not before the wait). */
            atomic_store(&pf->sleeping, true);
            if ((atomic_load(&pf->top) == top || atomic_load(&pf->resting)) && !pf->stop)
                pthread_cond_wait(&pf->cv, &pf->lock);
            atomic_store(&pf->sleeping, false);
            continue;
        }
        uint32_t n = end - start < PF_CHUNK ? end - start : PF_CHUNK;
        /* the lock stays held: a move of top down waits for this call */
        uz_vm_populate(pf->base + (size_t)start * PF_PAGE, (size_t)n * PF_PAGE);
        atomic_store(&pf->done, start + n);
        if (pf->hi < start + n)
            pf->hi = start + n;
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

/* Make the lock, the condition variable and the thread; false if any fails. */
static bool spawn(struct uz_prefault *pf)
{
    pf->stop = false;
    pf->gen = atomic_load(&fork_gen);
    if (pthread_mutex_init(&pf->lock, NULL) != 0)
        return false;
    if (pthread_cond_init(&pf->cv, NULL) != 0) {
        pthread_mutex_destroy(&pf->lock);
        return false;
    }
    if (pthread_create(&pf->thread, NULL, helper, pf) != 0) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->lock);
        return false;
    }
    return true;
}

void uz_prefault_start(struct uz_prefault *pf, void *base, uint32_t npages)
{
    memset(pf, 0, sizeof *pf);
    pf->base = base;
    pf->npages = npages;
    atomic_store(&pf->ahead, PF_MIN);
    const char *env = getenv("UZ_PREFAULT");
    if (env && strcmp(env, "0") == 0)
        return;
    pthread_once(&atfork_once, atfork_register);
    pf->running = spawn(pf);
}

/* True if the helper runs in this process; in a forked child, start one. */
static bool alive(struct uz_prefault *pf)
{
    if (!pf->running)
        return false;
    if (pf->gen == atomic_load_explicit(&fork_gen, memory_order_relaxed))
        return true;
    atomic_store(&pf->sleeping, false);
    pf->running = spawn(pf);
    return pf->running;
}

void uz_prefault_stop(struct uz_prefault *pf)
{
    if (!pf->running)
        return;
    if (pf->gen != atomic_load(&fork_gen)) {
        pf->running = false;    /* its thread stayed in the parent */
        return;
    }
    pthread_mutex_lock(&pf->lock);
    pf->stop = true;
    pthread_cond_signal(&pf->cv);
    pthread_mutex_unlock(&pf->lock);
    pthread_join(pf->thread, NULL);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->lock);
    pf->running = false;
}

void uz_prefault_top(struct uz_prefault *pf, uint32_t top, uint64_t used)
{
    if (!alive(pf))
        return;
    if (atomic_load_explicit(&pf->resting, memory_order_relaxed)) {
        /* the first move after a rest: the window is wanted again */
        pthread_mutex_lock(&pf->lock);
        atomic_store(&pf->resting, false);
        pthread_cond_signal(&pf->cv);
        pthread_mutex_unlock(&pf->lock);
    }
    uint64_t want = used / 512;
    uint32_t ahead = want < PF_MIN ? PF_MIN : want > PF_MAX ? PF_MAX : (uint32_t)want;
    atomic_store_explicit(&pf->ahead, ahead, memory_order_relaxed);
    uint32_t old = atomic_load_explicit(&pf->top, memory_order_relaxed);
    if (top < old) {
        /* The allocator gave [top, old) back.  Resident above it: [old,
         * hi), of which the new window keeps [old, top + ahead); the
         * rest is released here, with the helper held off, so that no
         * resident page is left beyond the window uncounted. */
        pthread_mutex_lock(&pf->lock);
        atomic_store(&pf->top, top);
        uint32_t keep = top + ahead;
        if (keep < old)
            keep = old;
        if (pf->hi > keep) {
            uz_vm_release(pf->base + (size_t)keep * PF_PAGE, (size_t)(pf->hi - keep) * PF_PAGE);
            pf->hi = keep;
        }
        atomic_store(&pf->done, top);  /* counted again as the helper walks it */
        pthread_cond_signal(&pf->cv);
        pthread_mutex_unlock(&pf->lock);
        return;
    }
    atomic_store(&pf->top, top);
    uint32_t d = atomic_load_explicit(&pf->done, memory_order_relaxed);
    if (atomic_load_explicit(&pf->sleeping, memory_order_relaxed) &&
        (d < top || d - top < ahead / 2)) {
        pthread_mutex_lock(&pf->lock);
        pthread_cond_signal(&pf->cv);
        pthread_mutex_unlock(&pf->lock);
    }
}

void uz_prefault_rest(struct uz_prefault *pf)
{
    if (!alive(pf))
        return;
    /* the helper is between populate calls while the lock is held, and
     * every page of [top, hi) is one it populated: none is the
     * allocator's (the arena lock keeps top where it is) */
    pthread_mutex_lock(&pf->lock);
    atomic_store(&pf->resting, true);
    uint32_t top = atomic_load(&pf->top);
    if (pf->hi > top) {
        uz_vm_release(pf->base + (size_t)top * PF_PAGE, (size_t)(pf->hi - top) * PF_PAGE);
        pf->hi = top;
    }
    atomic_store(&pf->done, top);
    pthread_mutex_unlock(&pf->lock);
}

uint64_t uz_prefault_bytes(struct uz_prefault *pf)
{
    if (!pf->running || pf->gen != atomic_load_explicit(&fork_gen, memory_order_relaxed))
        return 0;
    uint32_t t = atomic_load_explicit(&pf->top, memory_order_relaxed);
    uint32_t d = atomic_load_explicit(&pf->done, memory_order_relaxed);
    return d > t ? (uint64_t)(d - t) * PF_PAGE : 0;
}
