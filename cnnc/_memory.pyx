# cython: language_level=3
"""A caching NumPy allocator for the training loop.

A training step allocates the same few dozen large arrays (activations,
gradients, im2col-free outputs) every step and frees them all again. glibc
hands blocks above its mmap threshold back to the kernel, or trims them off
the heap top, so every step pays fresh page faults on megabytes of memory:
measured, that was a third of the MNIST CNN's step time. While
``reuse_buffers()`` is active, NumPy allocates through this module's handler
(NEP 49), which keeps freed blocks of 32 KiB and more in per-size free lists
and hands them back on the next request of the same size. Blocks are 64-byte
aligned, the alignment the SIMD kernels prefer.

Outside any ``reuse_buffers()`` block nothing is cached: blocks freed then go
straight back to the C library, and leaving the last active block empties
the cache, so the memory held is bounded by one step's working set (and by
``cache_limit`` bytes).

Exact-size reuse wastes memory in a training step, though: backward frees
activations of one size and asks for gradients of another, so the cache
ends up holding every size the step ever used. A :class:`StepArena` plans
instead: its first step records each large allocation (size, when made,
when freed); from that it places every block freed within the step at an
offset of one arena, blocks alive at the same time apart and blocks alive
at different times on the same bytes (largest first, each at the lowest
offset free for its lifetime). Later steps hand out the planned places in
order, so a warm step allocates no large buffer and the arena is about the
step's peak of live bytes. The recorded step's own blocks each get a
mapping of their own, unmapped when freed, so that step holds its live
bytes too: the C library keeps a freed block below its adaptive mmap
threshold (up to 32 MiB) in its heap, resident while later blocks sit
above it, which made VGG16's first step at batch 8 peak about 90 MiB
above the warm ones. A request that does not match the plan (another size,
or a block whose place is still held, say an array the caller kept from
the last step) is served from the cache as before, never from
occupied bytes. The arenas of steps that never run at the same time (one
model's batch shapes) share one set of bytes, an :class:`ArenaGroup`.
"""
from libc.stdint cimport uint8_t, uintptr_t
from libc.stdlib cimport calloc, free, getenv, realloc, strtoull
from libc.string cimport memcpy, memset, strncpy
from cpython.pycapsule cimport PyCapsule_New

import contextlib

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void *ctx
        void *(*malloc)(void *ctx, size_t size) noexcept nogil
        void *(*calloc)(void *ctx, size_t nelem, size_t elsize) noexcept nogil
        void *(*realloc)(void *ctx, void *ptr, size_t new_size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        char name[127]
        uint8_t version
        PyDataMemAllocator allocator
    object PyDataMem_SetHandler(object handler)
    int _import_array() except -1

cdef extern from "stdlib.h" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)

cdef extern from "sys/mman.h" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int madvise(void *addr, size_t length, int advice)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_DONTNEED
    void *MAP_FAILED

cdef extern from "unistd.h" nogil:
    long sysconf(int name)
    int _SC_PAGESIZE

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    static void cnnc_trim_heap(void) { malloc_trim(0); }
    #else
    static void cnnc_trim_heap(void) {}
    #endif
    """
    void cnnc_trim_heap() nogil

cdef extern from "pthread.h" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *mutex, void *attr)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)
    int pthread_atfork(void (*prepare)() noexcept nogil, void (*parent)() noexcept nogil,
                       void (*child)() noexcept nogil)
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_equal(pthread_t a, pthread_t b)

_import_array()

# The header in front of each block keeps its size (NumPy's realloc does not
# pass it), a tag that catches a foreign pointer, and where the block came
# from (an arena's bytes, or a step being recorded). 64 bytes keep the data
# 64-byte aligned.
cdef enum:
    HEADER = 64
    ALIGNMENT = 64
    MIN_CACHED = 32768  # below this glibc's bins are already fast
    MAX_ENTRIES = 1024
cdef size_t TAG = 0x636e6e63626c6b31  # "cnncblk1"

# The bytes of one or more arenas (an ArenaGroup's: one model's steps on
# different batch shapes, which never run at the same time).
cdef struct Backing:
    char *base
    size_t size
    Py_ssize_t users         # arenas (and the group) holding it
    Py_ssize_t live          # blocks of any of its arenas in use

# A step's allocation plan and its memory (see StepArena).
cdef struct Arena:
    char *base               # the arena's bytes (NULL until planned)
    Backing *backing         # what holds them
    size_t end               # the plan's bytes from base
    bint suspended           # this step runs off the plan: another arena's block holds its bytes
    Py_ssize_t planned       # allocations in the plan
    size_t *sizes            # size of allocation i
    Py_ssize_t *offsets      # its offset in base, -1 when it outlives the step
    Py_ssize_t *conflict_at  # conflicts of i: conflicts[conflict_at[i]:conflict_at[i + 1]]
    Py_ssize_t *conflicts    # the planned blocks whose bytes overlap i's
    char *live               # 1 while the block planned at i is in use
    Py_ssize_t live_count
    bint retired             # its StepArena is gone: free it once no block lives
    # recording (the first step)
    size_t recording         # nonzero while recording
    Py_ssize_t count         # allocations made in the current step
    Py_ssize_t capacity
    size_t *rec_size
    Py_ssize_t *rec_made
    Py_ssize_t *rec_freed    # -1: not freed within the step
    Py_ssize_t clock
    pthread_t owner          # the thread running the step
    size_t hits
    size_t fallbacks


cdef struct BlockHeader:
    size_t size
    size_t tag
    Arena *arena         # the arena whose bytes hold this block, else NULL
    Py_ssize_t index     # its place in the arena's plan
    size_t recording     # the recording it was logged by (0: none)
    size_t mapped        # bytes of its own mapping (a recorded block), else 0



cdef struct CacheEntry:
    size_t size
    void *raw

cdef pthread_mutex_t _lock
cdef CacheEntry _entries[MAX_ENTRIES]
cdef size_t _entry_count = 0
cdef size_t _cached_bytes = 0
cdef size_t _cache_limit = <size_t>1 << 30
cdef Py_ssize_t _active = 0
cdef size_t _hits = 0
cdef size_t _misses = 0
cdef Arena *_stepping = NULL   # the arena of the step running now, if any
cdef size_t _recordings = 0
pthread_mutex_init(&_lock, NULL)


cdef void _lock_before_fork() noexcept nogil:
    pthread_mutex_lock(&_lock)


cdef void _unlock_after_fork() noexcept nogil:
    pthread_mutex_unlock(&_lock)


# A fork while another thread holds the lock would leave the child's copy
# locked forever; holding it across fork() hands both sides an unlocked one.
pthread_atfork(_lock_before_fork, _unlock_after_fork, _unlock_after_fork)


cdef inline BlockHeader *_header(void *ptr) noexcept nogil:
    return <BlockHeader *>(<char *>ptr - HEADER)


cdef inline void *_new_block(void *raw, size_t size, size_t mapped) noexcept nogil:
    """The block after the header at raw, which it fills: not in an arena,
    not recorded, in a mapping of `mapped` bytes of its own (0: from the C
    library's heap)."""
    (<BlockHeader *>raw).size = size
    (<BlockHeader *>raw).tag = TAG
    (<BlockHeader *>raw).arena = NULL
    (<BlockHeader *>raw).recording = 0
    (<BlockHeader *>raw).mapped = mapped
    return <char *>raw + HEADER


cdef void *_fresh(size_t size) noexcept nogil:
    cdef void *raw = NULL
    if size > (<size_t>-1) - HEADER:
        return NULL
    if posix_memalign(&raw, ALIGNMENT, HEADER + size) != 0:
        return NULL
    return _new_block(raw, size, 0)


cdef size_t _page = <size_t>sysconf(_SC_PAGESIZE)


cdef void *_map_pages(size_t size, size_t *length) noexcept nogil:
    """A private anonymous mapping of size bytes rounded up to whole pages
    (their count in *length), or NULL."""
    cdef void *raw
    if size == 0 or size > (<size_t>-1) - _page:
        return NULL
    length[0] = (size + _page - 1) // _page * _page
    raw = mmap(NULL, length[0], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    return NULL if raw == MAP_FAILED else raw


cdef void *_fresh_mapped(size_t size) noexcept nogil:
    """A block in a mapping of its own, or NULL (see the module docstring)."""
    cdef size_t length = 0
    cdef void *raw
    if size > (<size_t>-1) - HEADER:
        return NULL
    raw = _map_pages(HEADER + size, &length)
    if raw == NULL:
        return NULL
    return _new_block(raw, size, length)


cdef void *_take_cached(size_t size) noexcept nogil:
    """A cached block of exactly ``size`` bytes, or NULL."""
    global _entry_count, _cached_bytes, _hits, _misses
    cdef size_t i
    cdef void *raw = NULL
    pthread_mutex_lock(&_lock)
    i = _entry_count
    while i > 0:  # newest first: the block most likely still in cache
        i -= 1
        if _entries[i].size == size:
            raw = _entries[i].raw
            _entry_count -= 1
            _entries[i] = _entries[_entry_count]
            _cached_bytes -= size
            break
    if raw != NULL:
        _hits += 1
    else:
        _misses += 1
    pthread_mutex_unlock(&_lock)
    if raw == NULL:
        return NULL
    return <char *>raw + HEADER


cdef Backing *_backing_new(size_t size) noexcept nogil:
    """Bytes for arenas (a mapping of their own, whole pages), with one
    user, or NULL."""
    cdef Backing *b = <Backing *>calloc(1, sizeof(Backing))
    if b == NULL:
        return NULL
    b.base = <char *>_map_pages(size, &b.size)
    if b.base == NULL:
        free(b)
        return NULL
    b.users = 1
    return b


cdef void _backing_drop(Backing *b) noexcept nogil:
    """One user fewer; the bytes go once none is left."""
    cdef bint gone
    if b == NULL:
        return
    pthread_mutex_lock(&_lock)
    b.users -= 1
    gone = b.users == 0
    pthread_mutex_unlock(&_lock)
    if gone:
        munmap(b.base, b.size)
        free(b)


cdef void _arena_free_all(Arena *a) noexcept nogil:
    _backing_drop(a.backing)
    free(a.sizes)
    free(a.offsets)
    free(a.conflict_at)
    free(a.conflicts)
    free(a.live)
    free(a.rec_size)
    free(a.rec_made)
    free(a.rec_freed)
    free(a)


cdef bint _record_room(Arena *a) noexcept nogil:
    """Room for one more recorded allocation (False: out of memory)."""
    cdef Py_ssize_t grown
    cdef void *p
    if a.count < a.capacity:
        return True
    grown = 2 * a.capacity + 256
    p = realloc(a.rec_size, grown * sizeof(size_t))
    if p == NULL:
        return False
    a.rec_size = <size_t *>p
    p = realloc(a.rec_made, grown * sizeof(Py_ssize_t))
    if p == NULL:
        return False
    a.rec_made = <Py_ssize_t *>p
    p = realloc(a.rec_freed, grown * sizeof(Py_ssize_t))
    if p == NULL:
        return False
    a.rec_freed = <Py_ssize_t *>p
    a.capacity = grown
    return True


cdef void *_arena_take(Arena *a, size_t size, Py_ssize_t *index) noexcept nogil:
    """The planned place of the step's next allocation (caller holds the
    lock), or NULL to serve it elsewhere; ``index`` gets its number, or -1
    when it is not recorded."""
    cdef Py_ssize_t i = a.count
    cdef Py_ssize_t k
    cdef BlockHeader *header
    index[0] = -1
    if a.recording:
        if not _record_room(a):
            a.recording = 0  # no plan this time; the step runs as without one
            return NULL
        a.rec_size[i] = size
        a.rec_made[i] = a.clock
        a.rec_freed[i] = -1
        a.clock += 1
        a.count += 1
        index[0] = i
        return NULL
    a.count += 1
    if a.base == NULL or i >= a.planned or a.sizes[i] != size or a.offsets[i] < 0:
        a.fallbacks += 1
        return NULL
    k = a.conflict_at[i]
    while k < a.conflict_at[i + 1]:
        if a.live[a.conflicts[k]]:
            a.fallbacks += 1
            return NULL
        k += 1
    if a.live[i] or a.suspended:
        a.fallbacks += 1
        return NULL
    a.live[i] = 1
    a.live_count += 1
    a.backing.live += 1
    a.hits += 1
    header = <BlockHeader *>(a.base + a.offsets[i])
    header.size = size
    header.tag = TAG
    header.arena = a
    header.index = i
    header.recording = 0
    header.mapped = 0
    return <char *>header + HEADER


cdef void *_malloc(void *ctx, size_t size) noexcept nogil:
    cdef void *ptr = NULL
    cdef Py_ssize_t index = -1
    cdef size_t recording = 0
    if size >= MIN_CACHED and _stepping != NULL:
        pthread_mutex_lock(&_lock)
        if _stepping != NULL and pthread_equal(_stepping.owner, pthread_self()):
            ptr = _arena_take(_stepping, size, &index)
            recording = _stepping.recording
        pthread_mutex_unlock(&_lock)
        if ptr != NULL:
            return ptr
    if index >= 0:
        ptr = _fresh_mapped(size)
    if size >= MIN_CACHED and ptr == NULL:
        ptr = _take_cached(size)
    if ptr == NULL:
        ptr = _fresh(size)
    if ptr != NULL and index >= 0:
        _header(ptr).index = index
        _header(ptr).recording = recording
    return ptr


cdef void *_calloc(void *ctx, size_t nelem, size_t elsize) noexcept nogil:
    cdef void *ptr
    if elsize != 0 and nelem > (<size_t>-1) // elsize:
        return NULL
    ptr = _malloc(ctx, nelem * elsize)
    if ptr != NULL:
        memset(ptr, 0, nelem * elsize)
    return ptr


cdef void _free(void *ctx, void *ptr, size_t size) noexcept nogil:
    global _entry_count, _cached_bytes
    cdef BlockHeader *header
    cdef bint kept = False
    if ptr == NULL:
        return
    header = _header(ptr)
    if header.tag != TAG:  # never ours: leave it alone rather than corrupt the heap
        return
    if header.arena != NULL:
        _arena_release(header)
        return
    if header.recording != 0:
        pthread_mutex_lock(&_lock)
        if _stepping != NULL and _stepping.recording == header.recording:
            _stepping.rec_freed[header.index] = _stepping.clock
            _stepping.clock += 1
        pthread_mutex_unlock(&_lock)
        # Not cached: the arena serves these blocks from the next step on.
        header.tag = 0
        if header.mapped:
            munmap(header, header.mapped)
        else:
            free(header)
        return
    if header.size >= MIN_CACHED:
        pthread_mutex_lock(&_lock)
        if (_active > 0 and _entry_count < MAX_ENTRIES
                and _cached_bytes + header.size <= _cache_limit):
            _entries[_entry_count].size = header.size
            _entries[_entry_count].raw = header
            _entry_count += 1
            _cached_bytes += header.size
            kept = True
        pthread_mutex_unlock(&_lock)
    if not kept:
        header.tag = 0
        free(header)


cdef void _arena_release(BlockHeader *header) noexcept nogil:
    cdef Arena *a = header.arena
    cdef bint gone
    pthread_mutex_lock(&_lock)
    header.tag = 0
    a.live[header.index] = 0
    a.live_count -= 1
    a.backing.live -= 1
    gone = a.retired and a.live_count == 0
    pthread_mutex_unlock(&_lock)
    if gone:
        _arena_free_all(a)


cdef void *_realloc(void *ctx, void *ptr, size_t new_size) noexcept nogil:
    cdef void *moved
    cdef size_t old_size
    if ptr == NULL:
        return _malloc(ctx, new_size)
    old_size = _header(ptr).size
    if new_size <= old_size and old_size - new_size < MIN_CACHED:
        return ptr  # a small shrink stays in place; the header keeps the block's size
    moved = _malloc(ctx, new_size)
    if moved == NULL:
        return NULL
    memcpy(moved, ptr, old_size if old_size < new_size else new_size)
    _free(ctx, ptr, old_size)
    return moved


cdef void _drain() noexcept nogil:
    """Give every cached block back to the C library."""
    global _entry_count, _cached_bytes
    pthread_mutex_lock(&_lock)
    while _entry_count > 0:
        _entry_count -= 1
        (<BlockHeader *>_entries[_entry_count].raw).tag = 0
        free(_entries[_entry_count].raw)
    _cached_bytes = 0
    pthread_mutex_unlock(&_lock)


cdef PyDataMem_Handler _handler
strncpy(_handler.name, b"cnnc_buffer_cache", 127)
_handler.version = 1
_handler.allocator.ctx = NULL
_handler.allocator.malloc = _malloc
_handler.allocator.calloc = _calloc
_handler.allocator.realloc = _realloc
_handler.allocator.free = _free
_handler_capsule = PyCapsule_New(&_handler, b"mem_handler", NULL)

cdef char *_limit_env = getenv(b"CNNC_BUFFER_CACHE_MB")
if _limit_env != NULL:
    _cache_limit = <size_t>strtoull(_limit_env, NULL, 10) << 20

cdef void _enter() noexcept nogil:
    global _active
    pthread_mutex_lock(&_lock)
    _active += 1
    pthread_mutex_unlock(&_lock)


cdef void _leave(bint drain) noexcept nogil:
    global _active
    cdef bint last
    pthread_mutex_lock(&_lock)
    _active -= 1
    last = _active == 0
    pthread_mutex_unlock(&_lock)
    if last and drain:
        _drain()


@contextlib.contextmanager
def reuse_buffers(drain=True):
    """NumPy arrays allocated inside the block come from (and go back to) the
    buffer cache. Nests, across threads too. With ``drain`` the cache empties
    when the last active block ends; without, it stays for the next block
    (``train_on_batch`` in a user's loop), bounded by the cache limit, until
    a draining block ends or ``release()`` is called."""
    cdef bint drain_at_end = drain
    with nogil:
        _enter()
    previous = PyDataMem_SetHandler(_handler_capsule)
    try:
        yield
    finally:
        PyDataMem_SetHandler(previous)
        with nogil:
            _leave(drain_at_end)


def release():
    """Give every cached block back to the C library now."""
    with nogil:
        _drain()


def trim_heap():
    """Give the free pages of the C library's heap back to the system
    (glibc's ``malloc_trim``; nothing elsewhere). Freed blocks below its
    mmap threshold stay resident where later blocks sit above them: worth a
    call after freeing many megabytes of such blocks at once."""
    with nogil:
        cnnc_trim_heap()


def cache_info():
    """(cached blocks, cached bytes, hits, misses, active blocks) for tests
    and diagnostics."""
    with nogil:
        pthread_mutex_lock(&_lock)
    info = (_entry_count, _cached_bytes, _hits, _misses, _active)
    with nogil:
        pthread_mutex_unlock(&_lock)
    return info


def set_cache_limit(limit_bytes):
    """Most bytes the cache keeps (default 1 GiB, or $CNNC_BUFFER_CACHE_MB)."""
    global _cache_limit
    limit = int(limit_bytes)
    if limit < 0:
        raise ValueError(f"limit_bytes must be >= 0, got {limit_bytes!r}")
    with nogil:
        pthread_mutex_lock(&_lock)
    _cache_limit = limit
    with nogil:
        pthread_mutex_unlock(&_lock)


def _plan(sizes, made, freed):
    """Offsets (bytes, -1 for blocks that outlive the step) placing each
    block in one arena, and the arena's size: largest first, each at the
    lowest offset whose bytes no block alive at the same time holds."""
    spans = [((size + HEADER + ALIGNMENT - 1) // ALIGNMENT) * ALIGNMENT for size in sizes]
    offsets = [-1] * len(sizes)
    placed = []
    order = sorted((i for i in range(len(sizes)) if freed[i] >= 0), key=lambda i: -spans[i])
    end = 0
    for i in order:
        busy = sorted((offsets[j], offsets[j] + spans[j]) for j in placed
                      if made[j] < freed[i] and made[i] < freed[j])
        at = 0
        for start, stop in busy:
            if at + spans[i] <= start:
                break
            at = max(at, stop)
        offsets[i] = at
        placed.append(i)
        end = max(end, at + spans[i])
    return offsets, spans, end


cdef class ArenaGroup:
    """Arenas whose steps never run at the same time (one model's training
    steps on different batch shapes, such as an epoch's last, shorter
    batch) share their bytes: a plan takes the group's when they are large
    enough, else the group grows to it, and the other arenas move onto the
    larger bytes at their next step. A step whose bytes still hold a block
    of another arena (an array kept from its step) runs off its plan."""

    cdef Backing *backing

    def __dealloc__(self):
        _backing_drop(self.backing)
        self.backing = NULL

    @property
    def nbytes(self):
        """The bytes the group holds now (0 before any plan)."""
        return self.backing.size if self.backing != NULL else 0


cdef class StepArena:
    """The planned memory of a repeated step (a training step of one model
    on one batch shape): ``with arena.step(): ...`` around each step, inside
    ``reuse_buffers()``. The first step records, later ones replay (see the
    module docstring). ``StepArena(group)`` shares its bytes with the other
    arenas of an :class:`ArenaGroup`. The bytes go back when every StepArena
    holding them (and their group) is collected and the last block placed in
    them is freed."""

    cdef Arena *_a
    cdef public object planned_bytes
    cdef int _stale
    cdef object _group

    def __cinit__(self, group=None):
        if group is not None and not isinstance(group, ArenaGroup):
            raise TypeError(f"group must be an ArenaGroup, got {type(group).__name__}")
        self._a = <Arena *>calloc(1, sizeof(Arena))
        if self._a == NULL:
            raise MemoryError("cannot allocate a step arena")
        self.planned_bytes = 0
        self._stale = 0
        self._group = group

    def __dealloc__(self):
        self._retire()

    cdef _retire(self):
        """Let go of the arena: its bytes are freed once no block placed in
        them is in use."""
        global _stepping
        cdef bint gone
        cdef Arena *a = self._a
        if a == NULL:
            return
        self._a = NULL
        with nogil:
            pthread_mutex_lock(&_lock)
            if _stepping == a:
                _stepping = NULL
            a.retired = True
            gone = a.live_count == 0
            pthread_mutex_unlock(&_lock)
            if gone:
                _arena_free_all(a)

    cdef _renew(self):
        """A new, empty plan: the next step records again."""
        self._retire()
        self._a = <Arena *>calloc(1, sizeof(Arena))
        if self._a == NULL:
            raise MemoryError("cannot allocate a step arena")
        self.planned_bytes = 0
        self._stale = 0

    @contextlib.contextmanager
    def step(self):
        """Run one step with this arena (a step nested in another one's runs
        without an arena of its own)."""
        global _stepping, _recordings
        cdef Arena *a = self._a
        cdef bint mine = False
        cdef size_t fallbacks = a.fallbacks
        cdef Backing *shared = NULL
        cdef Backing *left = NULL
        if self._group is not None:
            shared = (<ArenaGroup>self._group).backing
        finished = False
        with nogil:
            pthread_mutex_lock(&_lock)
            if _stepping == NULL:
                mine = True
                a.count = 0
                a.clock = 0
                a.owner = pthread_self()
                if a.base == NULL:
                    _recordings += 1
                    a.recording = _recordings
                    if shared != NULL and shared.live == 0:
                        # This step's blocks are made afresh while it
                        # records: the group's bytes, idle, need not stay
                        # resident beside them (the plan's steps fault
                        # back in what they use).
                        madvise(shared.base, shared.size, MADV_DONTNEED)
                elif (shared != NULL and shared != a.backing and shared.size >= a.end
                        and a.live_count == 0):
                    # The group grew bytes for a larger plan since: move
                    # onto them and let the old ones go.
                    shared.users += 1
                    left = a.backing
                    a.backing = shared
                    a.base = shared.base
                if a.base != NULL:
                    a.suspended = a.backing.live > a.live_count
                _stepping = a
            pthread_mutex_unlock(&_lock)
            _backing_drop(left)
        try:
            yield self
            finished = True
        finally:
            if mine:
                with nogil:
                    pthread_mutex_lock(&_lock)
                    _stepping = NULL
                    pthread_mutex_unlock(&_lock)
                if a.recording:
                    a.recording = 0
                    if finished:
                        self._make_plan()
                    else:  # a step cut short by an exception is no plan
                        self._renew()
                elif a.base != NULL:
                    # Two steps in a row off the plan (the step changed):
                    # plan again.
                    self._stale = self._stale + 1 if a.fallbacks > fallbacks else 0
                    if self._stale >= 2:
                        self._renew()

    cdef Backing *_backing_for(self, size_t end):
        """Bytes for a plan of ``end`` bytes, with a user for it: its
        group's when they are enough, else new ones (which become the
        group's, the larger). NULL when out of memory."""
        cdef Backing *b = NULL
        cdef Backing *old = NULL
        group = self._group
        if group is not None:
            b = (<ArenaGroup>group).backing
            if b != NULL and b.size >= end:
                with nogil:
                    pthread_mutex_lock(&_lock)
                    b.users += 1
                    pthread_mutex_unlock(&_lock)
                return b
        b = _backing_new(end)
        if b != NULL and group is not None:
            old = (<ArenaGroup>group).backing
            with nogil:
                pthread_mutex_lock(&_lock)
                b.users += 1
                pthread_mutex_unlock(&_lock)
            (<ArenaGroup>group).backing = b
            _backing_drop(old)
        return b

    cdef _make_plan(self):
        cdef Arena *a = self._a
        cdef Py_ssize_t n = a.count, i, k, total
        cdef Backing *backing
        sizes = [a.rec_size[i] for i in range(n)]
        made = [a.rec_made[i] for i in range(n)]
        freed = [a.rec_freed[i] for i in range(n)]
        offsets, spans, end = _plan(sizes, made, freed)
        free(a.rec_size)
        free(a.rec_made)
        free(a.rec_freed)
        a.rec_size = NULL
        a.rec_made = NULL
        a.rec_freed = NULL
        a.capacity = 0
        if end == 0:
            return
        # Blocks whose bytes overlap: a replayed block waits for all of them
        # to be free (they are, unless the step changed or a caller kept one).
        order = sorted((i for i in range(n) if offsets[i] >= 0), key=lambda i: offsets[i])
        overlaps = [[] for _ in range(n)]
        for x, i in enumerate(order):
            stop = offsets[i] + spans[i]
            for j in order[x + 1:]:
                if offsets[j] >= stop:
                    break
                overlaps[i].append(j)
                overlaps[j].append(i)
        total = sum(len(o) for o in overlaps)
        backing = self._backing_for(end)
        if backing == NULL:
            return  # no arena: the steps run from the cache
        a.sizes = <size_t *>calloc(n, sizeof(size_t))
        a.offsets = <Py_ssize_t *>calloc(n, sizeof(Py_ssize_t))
        a.conflict_at = <Py_ssize_t *>calloc(n + 1, sizeof(Py_ssize_t))
        a.conflicts = <Py_ssize_t *>calloc(total + 1, sizeof(Py_ssize_t))
        a.live = <char *>calloc(n, 1)
        if (a.sizes == NULL or a.offsets == NULL or a.conflict_at == NULL
                or a.conflicts == NULL or a.live == NULL):
            _backing_drop(backing)
            free(a.sizes)
            free(a.offsets)
            free(a.conflict_at)
            free(a.conflicts)
            free(a.live)
            a.sizes = NULL
            a.offsets = NULL
            a.conflict_at = NULL
            a.conflicts = NULL
            a.live = NULL
            return
        k = 0
        for i in range(n):
            a.sizes[i] = sizes[i]
            a.offsets[i] = offsets[i]
            a.conflict_at[i] = k
            for j in overlaps[i]:
                a.conflicts[k] = j
                k += 1
        a.conflict_at[n] = k
        a.planned = n
        a.backing = backing
        a.base = backing.base
        a.end = end
        self.planned_bytes = end
        # The recorded step's smaller arrays went back to the C library,
        # which may keep their pages; the arena holds the step from now on.
        with nogil:
            cnnc_trim_heap()

    def info(self):
        """(arena bytes, planned allocations, allocations served from the
        arena, allocations served elsewhere) for tests and diagnostics."""
        return (self.planned_bytes, self._a.planned, self._a.hits, self._a.fallbacks)
