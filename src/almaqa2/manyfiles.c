/* almaqa2.manyfiles: the system calls of a directory's many files, made in one call from
 * Python: its plain files listed with their sizes (or its files with what a tar header
 * says of them), its names told apart as files and directories, and one file linked
 * under many names.
 *
 * Why in C: a calibration table or plots directory is hundreds of small files, and a
 * reduction holds tens of thousands of them.  Packaging looks at each (its size, and that
 * it is a file it may read) before anything is planned, and fake mode then makes each as
 * a link to an empty file.  Called from Python once a file, os.stat makes a stat_result
 * of 19 fields (its times as floats among them) and os.link converts two paths: the walk
 * of an SB of 48,000 files took 0.18-0.2 s where find(1) prints every size in 0.1 s, and
 * fake mode took 1.6 times as long as cp -al.  qa2 tarsplit looks at every file of the
 * package the same way, and qa2 verify lists every directory of the package in two
 * processes.  Here only the names and their rows are Python objects; the rules stay in
 * Python (package/scan.py, package/materialize.py, transfer/tarsplit.py,
 * transfer/package_hashes.py).
 *
 * The scan keeps the plain files of a directory: regular files owned by the given user
 * with the owner's read bit set (the kernel lets its owner read one whatever its other
 * bits say); tarsplit keeps every regular file.  Every other name (a directory, a link,
 * another's file, a device, a name that vanished or cannot be looked at) is returned for
 * the caller to look at, and to say what is wrong with it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a listing keeps of a directory's entries: which (keeps, given the entry: its stat
 * filled in when it is kept and was looked at), and the row of each one kept, made of its
 * path and that stat (row: takes the path; a new reference, NULL with an exception). */
typedef struct {
    int (*keeps)(int fd, const struct dirent *d, struct stat *st, unsigned long uid);
    PyObject *(*row)(PyObject *rel, const struct stat *st, PyObject *modes);
    unsigned long uid;
    PyObject *modes;
} Kept;

/* Append the row of the entry name (its stat st) to rows if kept, else name to others;
 * the row's path is base + name (name alone where base is NULL). */
static int add(PyObject *rows, PyObject *others, PyObject *base, const char *name,
               const struct stat *st, const Kept *kept)
{
    PyObject *rel = PyUnicode_DecodeFSDefault(name), *row = NULL;
    if (rel == NULL)
        return -1;
    if (st == NULL) {
        int failed = PyList_Append(others, rel);
        Py_DECREF(rel);
        return failed;
    }
    if (base != NULL)
        Py_SETREF(rel, PyUnicode_Concat(base, rel));
    if (rel != NULL)
        row = kept->row(rel, st, kept->modes);
    if (row == NULL)
        return -1;
    int failed = PyList_Append(rows, row);
    Py_DECREF(row);
    return failed;
}

/* The directory open as fd, to read from its start (NULL with an OSError). */
static DIR *opened(int fd)
{
    int own = dup(fd); /* closedir closes it; fd stays the caller's */
    DIR *dir = own < 0 ? NULL : fdopendir(own);
    if (dir == NULL) {
        int failure = errno;
        if (own >= 0)
            close(own);
        errno = failure;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    rewinddir(dir); /* (a dup shares the offset of fd, which may have been read) */
    return dir;
}

/* The next entry of dir but "." and ".."; NULL at the end, or with *failed set and an
 * OSError if the directory cannot be read. */
static struct dirent *next_entry(DIR *dir, int *failed)
{
    struct dirent *d;
    do {
        errno = 0;
        if ((d = readdir(dir)) == NULL) {
            if (errno != 0) {
                PyErr_SetFromErrno(PyExc_OSError);
                *failed = 1;
            }
            return NULL;
        }
    } while (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0);
    return d;
}

/* (rows, others) of the directory open as fd: the rows of the entries kept, the names of
 * the others. */
static PyObject *listed(int fd, PyObject *base, const Kept *kept)
{
    DIR *dir = opened(fd);
    if (dir == NULL)
        return NULL;
    PyObject *rows = PyList_New(0), *others = PyList_New(0);
    int failed = rows == NULL || others == NULL;
    struct dirent *d;
    while (!failed && (d = next_entry(dir, &failed)) != NULL) {
        struct stat st;
        int keep = kept->keeps(fd, d, &st, kept->uid);
        failed = add(rows, others, base, d->d_name, keep ? &st : NULL, kept) != 0;
    }
    closedir(dir);
    if (failed) {
        Py_XDECREF(rows);
        Py_XDECREF(others);
        return NULL;
    }
    return Py_BuildValue("(NN)", rows, others);
}

/* Whether the entry d is a regular file, its stat in *st: as the directory says, then as
 * fstatat finds (not following a link; no, if it cannot: the caller looks again, and
 * says why). */
static int regular(int fd, const struct dirent *d, struct stat *st, unsigned long Py_UNUSED(uid))
{
    if (d->d_type != DT_REG && d->d_type != DT_UNKNOWN)
        return 0; /* a directory, link or other, as the directory says */
    return fstatat(fd, d->d_name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
}

/* A plain file: regular, owned by uid, the owner's read bit set. */
static int plain(int fd, const struct dirent *d, struct stat *st, unsigned long uid)
{
    return regular(fd, d, st, uid) && st->st_uid == (uid_t)uid && (st->st_mode & S_IRUSR);
}

static PyObject *sized(PyObject *rel, const struct stat *st, PyObject *Py_UNUSED(modes))
{
    return Py_BuildValue("(NLO)", rel, (long long)st->st_size, Py_None);
}

static PyObject *plain_files(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    PyObject *base;
    Kept kept = {plain, sized, 0, NULL};
    if (!PyArg_ParseTuple(args, "iUk:plain_files", &fd, &base, &kept.uid))
        return NULL;
    return listed(fd, base, &kept);
}

/* (rel, size, mode, mtime) as tarsplit's walk makes it: the permission bits, one int
 * object per mode (the dict modes), and the seconds of the time as int(st_mtime) has
 * them (rounded toward zero: a time before 1970 with a fraction is one more). */
static PyObject *for_tar(PyObject *rel, const struct stat *st, PyObject *modes)
{
    long long seconds = (long long)st->st_mtim.tv_sec;
    if (seconds < 0 && st->st_mtim.tv_nsec > 0)
        seconds += 1;
    PyObject *mode = PyLong_FromLong((long)(st->st_mode & 07777)), *one = NULL;
    if (mode != NULL)
        one = Py_XNewRef(PyDict_SetDefault(modes, mode, mode));
    Py_XDECREF(mode);
    if (one == NULL) {
        Py_DECREF(rel);
        return NULL;
    }
    return Py_BuildValue("(NLNL)", rel, (long long)st->st_size, one, seconds);
}

static PyObject *tar_entries(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    PyObject *base;
    Kept kept = {regular, for_tar, 0, NULL};
    if (!PyArg_ParseTuple(args, "iUO!:tar_entries", &fd, &base, &PyDict_Type, &kept.modes))
        return NULL;
    return listed(fd, base, &kept);
}

/* Whether the entry d is a directory, not through a link: as the directory says, or,
 * where it does not say, as fstatat finds (no: if it cannot). */
static int directory(int fd, const struct dirent *d, struct stat *st, unsigned long Py_UNUSED(uid))
{
    if (d->d_type != DT_UNKNOWN)
        return d->d_type == DT_DIR;
    return fstatat(fd, d->d_name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st->st_mode);
}

static PyObject *named(PyObject *name, const struct stat *Py_UNUSED(st), PyObject *Py_UNUSED(modes))
{
    return name;
}

static PyObject *names(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    Kept kept = {directory, named, 0, NULL};
    if (!PyArg_ParseTuple(args, "i:names", &fd))
        return NULL;
    return listed(fd, NULL, &kept);
}

/* What one read of the file name (in the directory open as fd) finds, as verify hashes
 * it: its bytes if it holds at most limit, else its size; why not, if it cannot be read.
 * buffer holds limit + 1 bytes.  (A system call cut short by a signal is made again, as
 * Python's own are.) */
static PyObject *read_one(int fd, const char *name, int flags, char *buffer, Py_ssize_t limit)
{
    int file;
    do
        file = openat(fd, name, flags);
    while (file < 0 && errno == EINTR);
    ssize_t got = -1;
    struct stat st;
    if (file >= 0) {
        do
            got = read(file, buffer, (size_t)limit + 1);
        while (got < 0 && errno == EINTR);
        if (got > limit && fstat(file, &st) != 0)
            got = -1;
        int failure = errno;
        close(file);
        errno = failure;
    }
    if (got < 0)
        return PyUnicode_FromFormat("unreadable (%s)", strerror(errno));
    if (got > limit)
        return PyLong_FromLongLong((long long)st.st_size);
    return PyBytes_FromStringAndSize(buffer, got);
}

static PyObject *read_small(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd, flags;
    PyObject *names;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "iO!ni:read_small", &fd, &PyList_Type, &names, &limit, &flags))
        return NULL;
    char *buffer = PyMem_Malloc((size_t)limit + 1);
    PyObject *found = buffer == NULL ? NULL : PyList_New(PyList_GET_SIZE(names));
    for (Py_ssize_t i = 0; found != NULL && i < PyList_GET_SIZE(names); i++) {
        PyObject *encoded = NULL, *one = NULL;
        if (PyUnicode_FSConverter(PyList_GET_ITEM(names, i), &encoded)) {
            one = read_one(fd, PyBytes_AS_STRING(encoded), flags, buffer, limit);
            Py_DECREF(encoded);
        }
        if (one == NULL)
            Py_CLEAR(found);
        else
            PyList_SET_ITEM(found, i, one);
    }
    PyMem_Free(buffer);
    return buffer == NULL ? PyErr_NoMemory() : found;
}

static PyObject *links(PyObject *Py_UNUSED(module), PyObject *args)
{
    int src_fd, dst_fd;
    PyObject *src, *names;
    if (!PyArg_ParseTuple(args, "iO&iO!:links", &src_fd, PyUnicode_FSConverter, &src, &dst_fd,
                          &PyList_Type, &names))
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i), *encoded = NULL;
        if (!PyUnicode_FSConverter(name, &encoded)) {
            Py_DECREF(src);
            return NULL;
        }
        int failed = linkat(src_fd, PyBytes_AS_STRING(src), dst_fd, PyBytes_AS_STRING(encoded), 0);
        if (failed) {
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
            Py_DECREF(encoded);
            Py_DECREF(src);
            return NULL;
        }
        Py_DECREF(encoded);
    }
    Py_DECREF(src);
    Py_RETURN_NONE;
}

static PyMethodDef functions[] = {
    {"plain_files", (PyCFunction)plain_files, METH_VARARGS,
     "plain_files(fd, base, uid) -> (rows, others): the plain files of the directory open"
     " as fd, each (base + name, size, None), and its other names, each in no order."},
    {"tar_entries", (PyCFunction)tar_entries, METH_VARARGS,
     "tar_entries(fd, base, modes) -> (rows, others): the regular files of the directory"
     " open as fd, each (base + name, size, permission bits, whole seconds of its mtime),"
     " each mode one object of the dict modes, and its other names, each in no order."},
    {"names", (PyCFunction)names, METH_VARARGS,
     "names(fd) -> (directories, others): the names in the directory open as fd, those of"
     " directories (not through a link) and all others, each in no order."},
    {"read_small", (PyCFunction)read_small, METH_VARARGS,
     "read_small(fd, names, limit, flags) -> list: what one read of each of names (in the"
     " directory open as fd, opened with flags) finds: its bytes if it holds at most limit,"
     " else its size (an int), or why it cannot be read ('unreadable (<reason>)')."},
    {"links", (PyCFunction)links, METH_VARARGS,
     "links(src_fd, src, dst_fd, names): link the file src (in the directory open as src_fd)"
     " as each of names (in the one open as dst_fd), in order; OSError names the one that"
     " failed, the others before it made."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "almaqa2.manyfiles",
    "The system calls of a directory's many files, made in one call (see the source).", -1,
    functions,
};

PyMODINIT_FUNC PyInit_manyfiles(void)
{
    return PyModule_Create(&module);
}
