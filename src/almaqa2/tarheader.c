/* almaqa2.tarheader: the tar header of a package's file, byte for byte as Python's tarfile
 * writes it in PAX format, for the common case only (an ASCII name, size and time that fit
 * their octal fields: every file a package holds).
 *
 * Why in C: qa2 tarsplit makes one header per file, and a package of calibration tables
 * holds a hundred thousand small files.  Built in Python, a header with a long name (as
 * they all have, ten directories deep) took 3.4 us, a third of the Python work of
 * splitting its file; here 0.9 us, the call included.
 *
 * What it writes, for a name of up to 100 bytes: one ustar block.  For a longer name,
 * first a PAX extended header (a ustar block named "././@PaxHeader" of type 'x') and its
 * record "<length> path=<name>\n" padded to whole blocks, then the ustar block with the
 * name cut at 100 bytes.  No owner, no group, no link, devices and prefix left empty,
 * the checksum counted with its own field as spaces.  tests/test_tar_headers.py holds
 * these equal to tarfile's for any entry.  ``plain_size`` gives a header's length without
 * making it, by the same rule, for the plan that sizes every file before any is written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

#define BLOCK 512
#define NAME 100                    /* the ustar name field */
#define NUMBER 8589934592LL         /* 8**11: the first size or time 11 octal digits miss */

/* One ustar block into b (BLOCK bytes, zeroed): fields at tarfile's offsets. */
static void ustar(char *b, const char *name, Py_ssize_t length, unsigned long mode,
                  long long size, long long mtime, char kind)
{
    unsigned sum = 0;
    memcpy(b, name, length < NAME ? length : NAME);
    snprintf(b + 100, 8, "%07lo", mode & 07777);  /* its permission bits only */
    memcpy(b + 108, "0000000", 8);  /* uid, then gid: 0, as tarfile writes them */
    memcpy(b + 116, "0000000", 8);
    snprintf(b + 124, 12, "%011llo", size);
    snprintf(b + 136, 12, "%011llo", mtime);
    memset(b + 148, ' ', 8);        /* the checksum field, counted as spaces */
    b[156] = kind;
    memcpy(b + 257, "ustar\0" "00", 8);
    for (int i = 0; i < BLOCK; i++)
        sum += (unsigned char)b[i];
    snprintf(b + 148, 7, "%06o", sum);
    b[155] = ' ';
}

static Py_ssize_t digits(Py_ssize_t n)
{
    Py_ssize_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* The length of the record "<length> path=<name>\n", its own digits included. */
static Py_ssize_t record_length(Py_ssize_t name_length)
{
    Py_ssize_t bare = 4 + name_length + 3, total = 0, with;
    while ((with = bare + digits(total)) != total)
        total = with;
    return total;
}

/* A number of the entry that fits an octal field, or -1 (an error is cleared). */
static long long fitting(PyObject *number)
{
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return overflow || value < 0 || value >= NUMBER ? -1 : value;
}

/* What a plain entry's header is made of (an ASCII name, size and time that fit). */
typedef struct {
    const char *name;
    Py_ssize_t length;  /* of the name */
    Py_ssize_t record;  /* of the PAX record (0: a short name needs none) */
    Py_ssize_t before;  /* bytes before the ustar block: the PAX header and record, padded */
    long long size, mtime;
    unsigned long mode;
} Plain;

/* Fill p from a plain entry: 1; 0 if it is not one; -1 with an exception set if it is not
 * an entry at all. */
static int fields(PyObject *entry, Plain *p)
{
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 4) {
        PyErr_SetString(PyExc_TypeError, "an entry is a tuple (rel, size, mode, mtime)");
        return -1;
    }
    PyObject *rel = PyTuple_GET_ITEM(entry, 0);
    p->mode = PyLong_AsUnsignedLongMask(PyTuple_GET_ITEM(entry, 2));
    if (p->mode == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (!PyUnicode_Check(rel) || !PyUnicode_IS_ASCII(rel))
        return 0;
    p->size = fitting(PyTuple_GET_ITEM(entry, 1));
    p->mtime = fitting(PyTuple_GET_ITEM(entry, 3));
    p->name = (const char *)PyUnicode_DATA(rel);
    p->length = PyUnicode_GET_LENGTH(rel);
    p->record = p->length > NAME ? record_length(p->length) : 0;
    p->before = p->record ? BLOCK + (p->record + BLOCK - 1) / BLOCK * BLOCK : 0;
    return p->size >= 0 && p->mtime >= 0;
}

static PyObject *plain(PyObject *Py_UNUSED(module), PyObject *entry)
{
    Plain p;
    int found = fields(entry, &p);
    if (found <= 0)
        return found < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *made = PyBytes_FromStringAndSize(NULL, p.before + BLOCK);
    if (made == NULL)
        return NULL;
    char *b = PyBytes_AS_STRING(made);
    memset(b, 0, p.before + BLOCK);
    if (p.record) {
        static const char pax[] = "././@PaxHeader";
        ustar(b, pax, sizeof pax - 1, 0, p.record, 0, 'x');
        char *at = b + BLOCK + sprintf(b + BLOCK, "%zd path=", p.record);
        memcpy(at, p.name, p.length);
        at[p.length] = '\n';
    }
    ustar(b + p.before, p.name, p.length, p.mode, p.size, p.mtime, '0');
    return made;
}

static PyObject *plain_size(PyObject *Py_UNUSED(module), PyObject *entry)
{
    Plain p;
    int found = fields(entry, &p);
    if (found <= 0)
        return found < 0 ? NULL : Py_NewRef(Py_None);
    return PyLong_FromSsize_t(p.before + BLOCK);
}

static PyMethodDef functions[] = {
    {"plain", (PyCFunction)plain, METH_O,
     "The header(s) of the entry (rel, size, mode, mtime) as tarfile writes them in PAX"
     " format, or None if it is not the common case (tarfile's own must make it)."},
    {"plain_size", (PyCFunction)plain_size, METH_O,
     "len(plain(entry)), worked out without making it (planning sizes every file)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "almaqa2.tarheader",
    "Tar headers of a package's files, as tarfile writes them (see the source).", -1, functions,
};

PyMODINIT_FUNC PyInit_tarheader(void)
{
    return PyModule_Create(&module);
}
