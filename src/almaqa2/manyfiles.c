/* almaqa2.manyfiles: the system calls of a directory's many files, made in one call from
 * Python: its plain files listed with their sizes, and one file linked under many names.
 *
 * Why in C: a calibration table or plots directory is hundreds of small files, and a
 * reduction holds tens of thousands of them.  Packaging looks at each (its size, and that
 * it is a file it may read) before anything is planned, and fake mode then makes each as
 * a link to an empty file.  Called from Python once a file, os.stat makes a stat_result
 * of 19 fields (its times as floats among them) and os.link converts two paths: the walk
 * of an SB of 48,000 files took 0.18-0.2 s where find(1) prints every size in 0.1 s, and
 * fake mode took 1.6 times as long as cp -al.  Here only the names and their rows are
 * Python objects; the rules stay in Python (package/scan.py, package/materialize.py).
 *
 * A plain file is a regular file owned by the given user with the owner's read bit set:
 * the kernel lets its owner read it whatever its other bits say.  Every other name (a
 * directory, a link, another's file, a device, a name that vanished or cannot be looked
 * at) is returned for the caller to look at, and to say what is wrong with it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether the entry d of the directory open as fd is a plain file; its size in *size. */
static int is_plain(int fd, const struct dirent *d, uid_t uid, long long *size)
{
    struct stat st;
    if (d->d_type != DT_REG && d->d_type != DT_UNKNOWN)
        return 0; /* a directory, link or other, as the directory says: the caller's */
    if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0; /* the caller looks again, and says why */
    if (!S_ISREG(st.st_mode) || st.st_uid != uid || !(st.st_mode & S_IRUSR))
        return 0;
    *size = (long long)st.st_size;
    return 1;
}

/* Append (base + name, size, None) to rows if plain, else name to others. */
static int add(PyObject *rows, PyObject *others, PyObject *base, const char *name,
               int plain, long long size)
{
    PyObject *decoded = PyUnicode_DecodeFSDefault(name), *row = NULL;
    if (decoded == NULL)
        return -1;
    if (!plain) {
        int failed = PyList_Append(others, decoded);
        Py_DECREF(decoded);
        return failed;
    }
    PyObject *rel = PyUnicode_Concat(base, decoded);
    Py_DECREF(decoded);
    if (rel != NULL)
        row = Py_BuildValue("(NLO)", rel, size, Py_None);
    if (row == NULL)
        return -1;
    int failed = PyList_Append(rows, row);
    Py_DECREF(row);
    return failed;
}

static PyObject *plain_files(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    PyObject *base;
    unsigned long uid;
    if (!PyArg_ParseTuple(args, "iUk:plain_files", &fd, &base, &uid))
        return NULL;
    int own = dup(fd); /* closedir closes it; fd stays the caller's */
    DIR *dir = own < 0 ? NULL : fdopendir(own);
    if (dir == NULL) {
        int failure = errno;
        if (own >= 0)
            close(own);
        errno = failure;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    rewinddir(dir); /* (a dup shares the offset of fd, which may have been read) */
    PyObject *rows = PyList_New(0), *others = PyList_New(0);
    long long total = 0;
    int failed = rows == NULL || others == NULL;
    struct dirent *d;
    while (!failed) {
        errno = 0;
        if ((d = readdir(dir)) == NULL) {
            if (errno != 0) {
                PyErr_SetFromErrno(PyExc_OSError);
                failed = 1;
            }
            break;
        }
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        long long size = 0;
        int plain = is_plain(fd, d, (uid_t)uid, &size);
        total += plain ? size : 0;
        failed = add(rows, others, base, d->d_name, plain, size) != 0;
    }
    closedir(dir);
    if (failed) {
        Py_XDECREF(rows);
        Py_XDECREF(others);
        return NULL;
    }
    return Py_BuildValue("(NNL)", rows, others, total);
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
     "plain_files(fd, base, uid) -> (rows, others, bytes): the plain files of the directory"
     " open as fd, each (base + name, size, None), in no order; its other names, in no order;"
     " and the plain files' bytes."},
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
