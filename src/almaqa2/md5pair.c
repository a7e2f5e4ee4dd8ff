/* MD5 (RFC 1321) of many streams at once: chunks and their members (qa2 verify), files
side by side (a package's manifest, made or checked).

MD5 is one chain of steps, each waiting on the one before: a core hashing one stream
mostly waits.  Streams hashed together fill that waiting.  Two streams' steps interleaved
take 1.1 to 1.2 times the time of one; where the CPU has AVX2, eight go in the eight lanes
of its vector registers, in about twice the time of one, each slower than in a pair
(measured on an Intel Xeon and an AMD EPYC).  A chunk's md5 and the md5s of its members
are streams over the same bytes, so chunks are checked at less than the cost of hashing
them once.  tests/test_md5pair.py holds every result equal to hashlib's.

An Md5 object is used by one thread at a time; the GIL is released while it hashes.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LANES 8  /* 32-bit lanes of an AVX2 register */
#endif

typedef struct {
    uint32_t s[4];
    uint64_t length;            /* bytes fed */
    unsigned char tail[64];     /* the fed bytes of a block not yet whole */
} state;

static uint32_t le32(const unsigned char *p) /* one load on a little-endian machine */
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
/* The round functions, written so that only one or two operations wait on b, the step
   before's result: the rest is done while it is worked out. */
#define F(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define G(b, c, d) (((c) & ~(d)) + ((b) & (d)))
#define H(b, c, d) ((b) ^ ((c) ^ (d)))
#define I(b, c, d) ((c) ^ ((b) | ~(d)))
#define STEP(f, a, b, c, d, x, t, n) a = (b) + ROL((a) + (x) + (t) + f(b, c, d), n);

/* The 64 steps: S(round function, registers in turn, message word, constant, shift). */
#define STEPS(S) \
    S(F, a, b, c, d,  0, 0xd76aa478,  7) S(F, d, a, b, c,  1, 0xe8c7b756, 12) \
    S(F, c, d, a, b,  2, 0x242070db, 17) S(F, b, c, d, a,  3, 0xc1bdceee, 22) \
    S(F, a, b, c, d,  4, 0xf57c0faf,  7) S(F, d, a, b, c,  5, 0x4787c62a, 12) \
    S(F, c, d, a, b,  6, 0xa8304613, 17) S(F, b, c, d, a,  7, 0xfd469501, 22) \
    S(F, a, b, c, d,  8, 0x698098d8,  7) S(F, d, a, b, c,  9, 0x8b44f7af, 12) \
    S(F, c, d, a, b, 10, 0xffff5bb1, 17) S(F, b, c, d, a, 11, 0x895cd7be, 22) \
    S(F, a, b, c, d, 12, 0x6b901122,  7) S(F, d, a, b, c, 13, 0xfd987193, 12) \
    S(F, c, d, a, b, 14, 0xa679438e, 17) S(F, b, c, d, a, 15, 0x49b40821, 22) \
    S(G, a, b, c, d,  1, 0xf61e2562,  5) S(G, d, a, b, c,  6, 0xc040b340,  9) \
    S(G, c, d, a, b, 11, 0x265e5a51, 14) S(G, b, c, d, a,  0, 0xe9b6c7aa, 20) \
    S(G, a, b, c, d,  5, 0xd62f105d,  5) S(G, d, a, b, c, 10, 0x02441453,  9) \
    S(G, c, d, a, b, 15, 0xd8a1e681, 14) S(G, b, c, d, a,  4, 0xe7d3fbc8, 20) \
    S(G, a, b, c, d,  9, 0x21e1cde6,  5) S(G, d, a, b, c, 14, 0xc33707d6,  9) \
    S(G, c, d, a, b,  3, 0xf4d50d87, 14) S(G, b, c, d, a,  8, 0x455a14ed, 20) \
    S(G, a, b, c, d, 13, 0xa9e3e905,  5) S(G, d, a, b, c,  2, 0xfcefa3f8,  9) \
    S(G, c, d, a, b,  7, 0x676f02d9, 14) S(G, b, c, d, a, 12, 0x8d2a4c8a, 20) \
    S(H, a, b, c, d,  5, 0xfffa3942,  4) S(H, d, a, b, c,  8, 0x8771f681, 11) \
    S(H, c, d, a, b, 11, 0x6d9d6122, 16) S(H, b, c, d, a, 14, 0xfde5380c, 23) \
    S(H, a, b, c, d,  1, 0xa4beea44,  4) S(H, d, a, b, c,  4, 0x4bdecfa9, 11) \
    S(H, c, d, a, b,  7, 0xf6bb4b60, 16) S(H, b, c, d, a, 10, 0xbebfbc70, 23) \
    S(H, a, b, c, d, 13, 0x289b7ec6,  4) S(H, d, a, b, c,  0, 0xeaa127fa, 11) \
    S(H, c, d, a, b,  3, 0xd4ef3085, 16) S(H, b, c, d, a,  6, 0x04881d05, 23) \
    S(H, a, b, c, d,  9, 0xd9d4d039,  4) S(H, d, a, b, c, 12, 0xe6db99e5, 11) \
    S(H, c, d, a, b, 15, 0x1fa27cf8, 16) S(H, b, c, d, a,  2, 0xc4ac5665, 23) \
    S(I, a, b, c, d,  0, 0xf4292244,  6) S(I, d, a, b, c,  7, 0x432aff97, 10) \
    S(I, c, d, a, b, 14, 0xab9423a7, 15) S(I, b, c, d, a,  5, 0xfc93a039, 21) \
    S(I, a, b, c, d, 12, 0x655b59c3,  6) S(I, d, a, b, c,  3, 0x8f0ccc92, 10) \
    S(I, c, d, a, b, 10, 0xffeff47d, 15) S(I, b, c, d, a,  1, 0x85845dd1, 21) \
    S(I, a, b, c, d,  8, 0x6fa87e4f,  6) S(I, d, a, b, c, 15, 0xfe2ce6e0, 10) \
    S(I, c, d, a, b,  6, 0xa3014314, 15) S(I, b, c, d, a, 13, 0x4e0811a1, 21) \
    S(I, a, b, c, d,  4, 0xf7537e82,  6) S(I, d, a, b, c, 11, 0xbd3af235, 10) \
    S(I, c, d, a, b,  2, 0x2ad7d2bb, 15) S(I, b, c, d, a,  9, 0xeb86d391, 21) \

#define ONE(f, a, b, c, d, g, t, n) STEP(f, a, b, c, d, x[g], t, n)
#define TWO(f, a, b, c, d, g, t, n) \
    STEP(f, a##1, b##1, c##1, d##1, x1[g], t, n) STEP(f, a##2, b##2, c##2, d##2, x2[g], t, n)

static void blocks(uint32_t *s, const unsigned char *p, size_t n)
{
    for (; n; n--, p += 64) {
        uint32_t x[16], a = s[0], b = s[1], c = s[2], d = s[3];
        for (int i = 0; i < 16; i++)
            x[i] = le32(p + 4 * i);
        STEPS(ONE)
        s[0] += a, s[1] += b, s[2] += c, s[3] += d;
    }
}

static void blocks_of_two(uint32_t *s1, const unsigned char *p1, uint32_t *s2,
                          const unsigned char *p2, size_t n)
{
    for (; n; n--, p1 += 64, p2 += 64) {
        uint32_t x1[16], x2[16];
        uint32_t a1 = s1[0], b1 = s1[1], c1 = s1[2], d1 = s1[3];
        uint32_t a2 = s2[0], b2 = s2[1], c2 = s2[2], d2 = s2[3];
        for (int i = 0; i < 16; i++)
            x1[i] = le32(p1 + 4 * i), x2[i] = le32(p2 + 4 * i);
        STEPS(TWO)
        s1[0] += a1, s1[1] += b1, s1[2] += c1, s1[3] += d1;
        s2[0] += a2, s2[1] += b2, s2[2] += c2, s2[3] += d2;
    }
}

/* Complete st's tail from *p, if it has one: what is left of the bytes after it. */
static void fill_tail(state *st, const unsigned char **p, size_t *n)
{
    size_t have = st->length % 64, take;
    st->length += *n;
    if (!have)
        return;
    take = 64 - have < *n ? 64 - have : *n;
    memcpy(st->tail + have, *p, take);
    *p += take, *n -= take;
    if (have + take == 64)
        blocks(st->s, st->tail, 1);
    else
        *n = 0;  /* all taken into the tail, which is still not whole */
}

/* ---- Many streams: each stream's whole blocks are a job ---- */

typedef struct {
    state *st;
    const unsigned char *p;  /* its next whole block */
    size_t n;                /* whole blocks left */
} job;

/* The job of st fed n bytes at p: its tail completed first, the bytes after its last
   whole block kept as its new tail. */
static void as_job(job *j, state *st, const unsigned char *p, size_t n)
{
    fill_tail(st, &p, &n);
    j->st = st, j->p = p, j->n = n / 64;
    memcpy(st->tail, p + n / 64 * 64, n % 64);
}

static void feed(state *st, const unsigned char *p, size_t n)
{
    job j;
    as_job(&j, st, p, n);
    blocks(st->s, j.p, j.n);
}

#ifdef LANES
#define AVX2 __attribute__((target("avx2")))
#define V __m256i
#define VF(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define VG(b, c, d) _mm256_add_epi32(_mm256_andnot_si256(d, c), _mm256_and_si256(b, d))
#define VH(b, c, d) _mm256_xor_si256(b, _mm256_xor_si256(c, d))
#define VI(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))
#define VROL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))
#define VADD(x, y) _mm256_add_epi32(x, y)
#define VSTEP(f, a, b, c, d, g, t, n) \
    a = VADD(b, VROL(VADD(VADD(a, VADD(w[g], _mm256_set1_epi32((int)(t)))), V##f(b, c, d)), n));

/* 8 lanes' rows of 8 words made 8 rows of each word's 8 lanes. */
AVX2 static inline void transpose(V r[8])
{
    V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

/* n blocks of each lane's stream (from p[lane], which moves on by step[lane]: 64, or 0
   for a lane with no stream, which hashes a block of zeros to no one's use). */
AVX2 static void lane_blocks(uint32_t s[4][LANES], const unsigned char *p[LANES],
                             const size_t step[LANES], size_t n)
{
    const V ones = _mm256_set1_epi32(-1);
    V s0 = _mm256_loadu_si256((V *)s[0]), s1 = _mm256_loadu_si256((V *)s[1]);
    V s2 = _mm256_loadu_si256((V *)s[2]), s3 = _mm256_loadu_si256((V *)s[3]);
    for (; n; n--) {
        V w[16], a = s0, b = s1, c = s2, d = s3;
        for (int half = 0; half < 2; half++) {
            V r[8];
            for (int l = 0; l < LANES; l++)
                r[l] = _mm256_loadu_si256((const V *)(p[l] + 32 * half));
            transpose(r);
            memcpy(w + 8 * half, r, sizeof r);
        }
        for (int l = 0; l < LANES; l++)
            p[l] += step[l];
        STEPS(VSTEP)
        s0 = VADD(s0, a), s1 = VADD(s1, b), s2 = VADD(s2, c), s3 = VADD(s3, d);
    }
    _mm256_storeu_si256((V *)s[0], s0), _mm256_storeu_si256((V *)s[1], s1);
    _mm256_storeu_si256((V *)s[2], s2), _mm256_storeu_si256((V *)s[3], s3);
}

static int have_avx2;
#define LANES_FROM 3  /* streams: fewer go in pairs, which are then faster */

/* The jobs (largest first) in lanes while LANES_FROM or more have blocks left, each lane
   given the next job when its own is done; what is left (jobs begun or not) is moved to
   the front, and *count set to how many. */
static void in_lanes(job *jobs, size_t *count)
{
    static const unsigned char zeros[64];
    uint32_t s[4][LANES];
    const unsigned char *p[LANES];
    size_t step[LANES], next = 0, left = 0;
    job *in[LANES] = {NULL};
    int busy = 0;
    for (int l = 0; l < LANES; l++)
        p[l] = zeros, step[l] = 0;
    for (;;) {
        size_t n = SIZE_MAX;
        for (int l = 0; l < LANES; l++) {
            while (in[l] == NULL && next < *count) {
                job *j = &jobs[next++];
                if (j->n == 0)
                    continue;
                in[l] = j, busy++;
                for (int i = 0; i < 4; i++)
                    s[i][l] = j->st->s[i];
                p[l] = j->p, step[l] = 64;
            }
            if (in[l] != NULL && in[l]->n < n)
                n = in[l]->n;
        }
        if (busy < LANES_FROM)
            break;
        lane_blocks(s, p, step, n);
        for (int l = 0; l < LANES; l++) {
            if (in[l] == NULL)
                continue;
            in[l]->n -= n, in[l]->p = p[l];
            if (in[l]->n == 0) {
                for (int i = 0; i < 4; i++)
                    in[l]->st->s[i] = s[i][l];
                in[l] = NULL, busy--;
                p[l] = zeros, step[l] = 0;
            }
        }
    }
    job begun[LANES];  /* the lanes' jobs not done, then those not begun */
    for (int l = 0; l < LANES; l++) {
        if (in[l] != NULL) {
            for (int i = 0; i < 4; i++)
                in[l]->st->s[i] = s[i][l];
            begun[left++] = *in[l];
        }
    }
    memmove(jobs + left, jobs + next, (*count - next) * sizeof *jobs);
    memcpy(jobs, begun, left * sizeof *jobs);
    *count = left + *count - next;
}
#endif

static int larger_first(const void *x, const void *y)
{
    size_t a = ((const job *)x)->n, b = ((const job *)y)->n;
    return (a < b) - (a > b);
}

/* Every job's blocks hashed: in lanes if the CPU has them, the rest two by two. */
static void run(job *jobs, size_t count)
{
    qsort(jobs, count, sizeof *jobs, larger_first);
#ifdef LANES
    if (have_avx2 && count >= LANES_FROM)
        in_lanes(jobs, &count);
#endif
    for (size_t i = 0; i < count; i += 2) {
        job *one = &jobs[i], *two = i + 1 < count ? &jobs[i + 1] : NULL;
        size_t common = two == NULL ? 0 : (one->n < two->n ? one->n : two->n);
        if (common)
            blocks_of_two(one->st->s, one->p, two->st->s, two->p, common);
        blocks(one->st->s, one->p + common * 64, one->n - common);
        if (two != NULL)
            blocks(two->st->s, two->p + common * 64, two->n - common);
    }
}

static void digest_of(const state *st, unsigned char out[16])
{
    state last = *st;
    unsigned char pad[72] = {0x80};
    uint64_t bits = st->length * 8;
    size_t n = (st->length % 64 < 56 ? 56 : 120) - st->length % 64;
    for (int i = 0; i < 8; i++)
        pad[n + i] = (unsigned char)(bits >> (8 * i));
    feed(&last, pad, n + 8);
    for (int i = 0; i < 16; i++)
        out[i] = (unsigned char)(last.s[i / 4] >> (8 * (i % 4)));
}

static void start(state *st)
{
    static const uint32_t initial[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    memcpy(st->s, initial, sizeof initial);
    st->length = 0;
}

static PyObject *hex_of(const unsigned char digest[16])
{
    static const char hex[] = "0123456789abcdef";
    char text[32];
    for (int i = 0; i < 16; i++)
        text[2 * i] = hex[digest[i] >> 4], text[2 * i + 1] = hex[digest[i] & 15];
    return PyUnicode_FromStringAndSize(text, 32);
}

/* ---- Python ---- */

#define UNLOCKED_FROM 8192  /* bytes: below this, releasing the GIL costs more than it gives */

/* Every job hashed (``run``), the GIL let go if they hold UNLOCKED_FROM bytes or more. */
static void hash_jobs(job *jobs, size_t count, Py_ssize_t bytes)
{
    if (bytes >= UNLOCKED_FROM) {
        Py_BEGIN_ALLOW_THREADS
        run(jobs, count);
        Py_END_ALLOW_THREADS
    } else {
        run(jobs, count);
    }
}

/* Data hashed where the GIL may be let go (``hash_jobs``). */
static void update(state *st, const Py_buffer *data)
{
    job j;
    as_job(&j, st, data->buf, (size_t)data->len);
    hash_jobs(&j, 1, data->len);
}

/* A call's sequence of items (hexdigests, update_many), with a view of the bytes of each
   and a job for them. */
typedef struct {
    PyObject *seq;
    Py_ssize_t n, got, bytes;  /* items; views taken, and their bytes */
    Py_buffer *views;
    job *jobs;
} batch;

/* b made of the sequence items (else a TypeError saying what); 0, or -1 with an error set
   (b is to be closed all the same). */
static int batch_open(batch *b, PyObject *items, const char *what)
{
    b->got = b->bytes = 0;
    b->views = NULL, b->jobs = NULL;
    b->seq = PySequence_Fast(items, what);
    if (b->seq == NULL)
        return -1;
    b->n = PySequence_Fast_GET_SIZE(b->seq);
    b->views = PyMem_Calloc(b->n ? b->n : 1, sizeof *b->views);
    b->jobs = PyMem_Malloc((b->n ? b->n : 1) * sizeof *b->jobs);
    if (b->views == NULL || b->jobs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* A view of data's bytes taken as b's next; 0, or -1 with an error set. */
static int batch_view(batch *b, PyObject *data)
{
    if (PyObject_GetBuffer(data, &b->views[b->got], PyBUF_SIMPLE) < 0)
        return -1;
    b->bytes += b->views[b->got++].len;
    return 0;
}

static void batch_close(batch *b)
{
    for (Py_ssize_t i = 0; i < b->got; i++)
        PyBuffer_Release(&b->views[i]);
    PyMem_Free(b->views);
    PyMem_Free(b->jobs);
    Py_XDECREF(b->seq);
}

typedef struct {
    PyObject_HEAD
    state st;
    int feeding;  /* in the update_many being read */
} Md5;

static PyTypeObject Md5Type;

static PyObject *Md5_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"data", NULL};
    Py_buffer data = {0};
    Md5 *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|y*:Md5", names, &data))
        return NULL;
    self = (Md5 *)type->tp_alloc(type, 0);
    if (self != NULL) {
        start(&self->st);
        if (data.buf != NULL)
            update(&self->st, &data);
    }
    if (data.buf != NULL)
        PyBuffer_Release(&data);
    return (PyObject *)self;
}

static PyObject *Md5_update(Md5 *self, PyObject *arg)
{
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    update(&self->st, &data);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

static PyObject *Md5_digest(Md5 *self, PyObject *Py_UNUSED(ignored))
{
    unsigned char out[16];
    digest_of(&self->st, out);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *Md5_hexdigest(Md5 *self, PyObject *Py_UNUSED(ignored))
{
    unsigned char out[16];
    digest_of(&self->st, out);
    return hex_of(out);
}

static PyMethodDef Md5_methods[] = {
    {"update", (PyCFunction)Md5_update, METH_O, "Feed it bytes (any buffer)."},
    {"digest", (PyCFunction)Md5_digest, METH_NOARGS, "The md5 of the bytes fed so far."},
    {"hexdigest", (PyCFunction)Md5_hexdigest, METH_NOARGS, "digest(), in hexadecimal."},
    {NULL},
};

static PyTypeObject Md5Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "almaqa2.md5pair.Md5",
    .tp_basicsize = sizeof(Md5),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An md5 being computed, as hashlib.md5(data=b'').",
    .tp_new = Md5_new,
    .tp_methods = Md5_methods,
};

/* The md5s of many small pieces (the files of a batch), hashed together. */
static PyObject *hexdigests(PyObject *Py_UNUSED(module), PyObject *pieces)
{
    batch b;
    state *states = NULL;
    PyObject *found = NULL;
    if (batch_open(&b, pieces, "hexdigests: a sequence of bytes-like pieces") < 0)
        goto done;
    states = PyMem_Malloc((b.n ? b.n : 1) * sizeof *states);
    if (states == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    while (b.got < b.n) {
        if (batch_view(&b, PySequence_Fast_GET_ITEM(b.seq, b.got)) < 0)
            goto done;
    }
    for (Py_ssize_t i = 0; i < b.n; i++) {
        start(&states[i]);
        as_job(&b.jobs[i], &states[i], b.views[i].buf, (size_t)b.views[i].len);
    }
    hash_jobs(b.jobs, (size_t)b.n, b.bytes);
    found = PyList_New(b.n);
    for (Py_ssize_t i = 0; found != NULL && i < b.n; i++) {
        unsigned char digest[16];
        PyObject *text;
        digest_of(&states[i], digest);
        text = hex_of(digest);
        if (text == NULL)
            Py_CLEAR(found);
        else
            PyList_SET_ITEM(found, i, text);
    }
done:
    batch_close(&b);
    PyMem_Free(states);
    return found;
}

/* Each (Md5, data) of feeds: md5.update(data), all hashed together. */
static PyObject *update_many(PyObject *Py_UNUSED(module), PyObject *feeds)
{
    batch b;
    Md5 **md5s = NULL;
    PyObject *result = NULL;
    if (batch_open(&b, feeds, "update_many: a sequence of (Md5, data) pairs") < 0)
        goto done;
    md5s = PyMem_Calloc(b.n ? b.n : 1, sizeof *md5s);
    if (md5s == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    while (b.got < b.n) {
        PyObject *pair = PySequence_Fast_GET_ITEM(b.seq, b.got);
        Md5 *md5;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2
            || !PyObject_TypeCheck(PyTuple_GET_ITEM(pair, 0), &Md5Type)) {
            PyErr_SetString(PyExc_TypeError, "update_many: each feed is a tuple (Md5, data)");
            goto done;
        }
        md5 = (Md5 *)PyTuple_GET_ITEM(pair, 0);
        if (md5->feeding) {  /* its blocks would be hashed from one state twice */
            PyErr_SetString(PyExc_ValueError, "update_many: an Md5 is fed twice");
            goto done;
        }
        if (batch_view(&b, PyTuple_GET_ITEM(pair, 1)) < 0)
            goto done;
        Py_INCREF(md5);  /* (held here: the GIL is let go, the list could change) */
        md5->feeding = 1;
        md5s[b.got - 1] = md5;
    }
    for (Py_ssize_t i = 0; i < b.n; i++)
        as_job(&b.jobs[i], &md5s[i]->st, b.views[i].buf, (size_t)b.views[i].len);
    hash_jobs(b.jobs, (size_t)b.n, b.bytes);
    result = Py_None;
    Py_INCREF(result);
done:
    for (Py_ssize_t i = 0; md5s != NULL && i < b.got; i++) {
        md5s[i]->feeding = 0;
        Py_DECREF(md5s[i]);
    }
    batch_close(&b);
    PyMem_Free(md5s);
    return result;
}

static PyMethodDef functions[] = {
    {"hexdigests", (PyCFunction)hexdigests, METH_O,
     "hexdigests(pieces): the md5 of each piece (in hexadecimal), hashed together."},
    {"update_many", (PyCFunction)update_many, METH_O,
     "update_many(feeds): md5.update(data) for each (md5, data) of feeds, hashed together\n"
     "(each md5 at most once)."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "almaqa2.md5pair",
    "MD5 of many streams at once: chunks' and their members' from the same bytes.", -1,
    functions,
};

PyMODINIT_FUNC PyInit_md5pair(void)
{
    PyObject *m;
#ifdef LANES
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    if (PyType_Ready(&Md5Type) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
#ifdef LANES
    if (PyModule_AddIntConstant(m, "LANES", have_avx2 ? LANES : 0) < 0) {
#else
    if (PyModule_AddIntConstant(m, "LANES", 0) < 0) {
#endif
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&Md5Type);
    if (PyModule_AddObject(m, "Md5", (PyObject *)&Md5Type) < 0) {
        Py_DECREF(&Md5Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
