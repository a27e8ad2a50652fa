/*
 * The wire formats of TFRecord reading, in C: frame() finds the records of a
 * TFRecord buffer and decode() decodes serialized tf.Example records straight
 * into Arrow column buffers.
 *
 * A TFRecord is ``length (uint64 LE) | masked crc32c(length) (4) | data |
 * masked crc32c(data) (4)``; frame() only walks the lengths, and check_crcs()
 * checks both CRCs of framed records (CRC32C with SSE 4.2 where the CPU has it,
 * else by slicing-by-8 tables).
 *
 * A tf.Example on the wire (tensorflow/core/example/{example,feature}.proto):
 *
 *   Example      { Features features = 1; }
 *   Features     { map<string, Feature> feature = 1; }   entries: { key = 1; value = 2; }
 *   Feature      { oneof { BytesList = 1; FloatList = 2; Int64List = 3; } }
 *   BytesList    { repeated bytes value = 1; }
 *   FloatList    { repeated float value = 1 [packed]; }
 *   Int64List    { repeated int64 value = 1 [packed]; }
 *
 * decode() walks the wire format of a batch of records once and fills, per
 * feature of the schema, the buffers of a large_list column: a validity bitmap
 * (a missing feature is null, a present one with no values is []), int64 list
 * offsets, and the values (int64, float32, or large_binary data with int64
 * offsets). Packed and unpacked repeated fields and unknown fields are read as
 * protobuf reads them; features outside the schema are checked, not kept.
 *
 * It refuses, with ValueError naming the record, what it does not decode the
 * way protobuf would merge it (a feature twice in one record, a Feature with
 * two lists, a map entry with two keys or values) as well as what is malformed
 * or of another type than the schema's. The caller hands such a batch to
 * tfx-bsl's decoder, which decides record by record. The GIL is released while
 * the records are walked.
 *
 * scan() walks records the same way for schema inference, keeping no values:
 * the features they name, with how many records hold each with which kind of
 * list, and whether each record is a tf.Example, malformed, or a message with
 * fields a tf.Example does not have (another kind of message).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the float values are copied as they are on the wire: little-endian hosts only"
#endif

enum { KIND_BYTES = 1, KIND_FLOAT = 2, KIND_INT = 3 };

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

typedef struct {
    const char *name;
    Py_ssize_t name_len;
    int kind;
    int64_t *offsets;    /* rows + 1 */
    uint8_t *validity;   /* (rows + 7) / 8, little-endian bit order */
    int64_t nulls;
    int64_t count;       /* values so far */
    Buf values;          /* int64 / float32 values, or the bytes of BYTES values */
    Buf value_offsets;   /* BYTES: int64, count + 1 */
    Py_ssize_t seen;     /* last record (+1) naming this feature */
    Py_ssize_t present;  /* last record (+1) holding a list of it */
} Column;

typedef struct {
    const uint8_t *p, *end;
} Span;

/* Error reporting without the GIL: a static message and the record. */
typedef struct {
    const char *what;
    Py_ssize_t record;
} Failure;

static inline int read_varint(Span *s, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && s->p < s->end; shift += 7) {
        uint8_t byte = *s->p++;
        v |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* A field's tag; field number 0 and numbers past 2^29 - 1 are malformed. */
static inline int read_tag(Span *s, uint64_t *tag) {
    return read_varint(s, tag) && *tag >= 8 && *tag <= 0xFFFFFFFFu;
}

static inline int read_span(Span *s, Span *out) {
    uint64_t n;
    if (!read_varint(s, &n) || n > (uint64_t)(s->end - s->p)) return 0;
    out->p = s->p;
    out->end = s->p + n;
    s->p += n;
    return 1;
}

static inline int skip_field(Span *s, int wire_type) {
    uint64_t v;
    Span ignored;
    switch (wire_type) {
    case 0: return read_varint(s, &v);
    case 1: if (s->end - s->p < 8) return 0; s->p += 8; return 1;
    case 2: return read_span(s, &ignored);
    case 5: if (s->end - s->p < 4) return 0; s->p += 4; return 1;
    default: return 0; /* groups (3, 4) never occur in these messages */
    }
}

/* What the list readers return. */
enum { LIST_OK, LIST_MALFORMED, LIST_OUT_OF_MEMORY };

/* One value field of a list (wire type 2: packed, or a bytes value), appended to c. */
static int append_span(int kind, Span v, Column *c) {
    size_t n = (size_t)(v.end - v.p);
    if (kind == KIND_INT) {
        uint64_t x;
        if (buf_reserve(&c->values, n * 8)) return LIST_OUT_OF_MEMORY; /* at most one value per byte */
        int64_t *out = (int64_t *)(c->values.data + c->values.len);
        int64_t count = 0;
        while (v.p < v.end) {
            if (!read_varint(&v, &x)) return LIST_MALFORMED;
            out[count++] = (int64_t)x;
        }
        c->values.len += (size_t)count * 8;
        c->count += count;
        return LIST_OK;
    }
    if (buf_reserve(&c->values, n)) return LIST_OUT_OF_MEMORY;
    memcpy(c->values.data + c->values.len, v.p, n);
    c->values.len += n;
    if (kind == KIND_FLOAT) {
        c->count += (int64_t)(n / 4);
        return LIST_OK;
    }
    if (buf_reserve(&c->value_offsets, 8)) return LIST_OUT_OF_MEMORY;
    int64_t end = (int64_t)c->values.len;
    memcpy(c->value_offsets.data + c->value_offsets.len, &end, 8);
    c->value_offsets.len += 8;
    c->count += 1;
    return LIST_OK;
}

/* The values (field 1) of a BytesList, FloatList or Int64List, appended to c,
 * or only checked if c is NULL. A value field of a wire type the kind does not
 * take is an unknown field to protobuf, and skipped here too. */
static int read_values(int kind, Span s, Column *c) {
    uint64_t tag, x;
    while (s.p < s.end) {
        if (!read_tag(&s, &tag)) return LIST_MALFORMED;
        int wt = (int)(tag & 7);
        int takes = (tag >> 3) == 1 &&
                    (wt == 2 || (kind == KIND_INT && wt == 0) || (kind == KIND_FLOAT && wt == 5));
        if (!takes) {
            if (!skip_field(&s, wt)) return LIST_MALFORMED;
            continue;
        }
        Span v;
        if (wt == 2) {
            if (!read_span(&s, &v)) return LIST_MALFORMED;
            if (kind == KIND_FLOAT && (v.end - v.p) % 4) return LIST_MALFORMED;
        } else if (wt == 5) {
            if (s.end - s.p < 4) return LIST_MALFORMED;
            v.p = s.p;
            v.end = s.p += 4;
        } else { /* one unpacked varint */
            const uint8_t *start = s.p;
            if (!read_varint(&s, &x)) return LIST_MALFORMED;
            v.p = start;
            v.end = s.p;
        }
        if (kind == KIND_INT && !c) {
            while (v.p < v.end)
                if (!read_varint(&v, &x)) return LIST_MALFORMED;
        } else if (c) {
            int status = append_span(kind, v, c);
            if (status != LIST_OK) return status;
        }
    }
    return LIST_OK;
}

/* The columns by name: open addressing on a hash of a key's first and last
 * eight bytes and its length. A key of up to 16 bytes is told apart by those
 * alone; a longer one is compared in full. */
typedef struct {
    Column *cols;
    Py_ssize_t ncols;
    int32_t *slots; /* column index, or -1 */
    uint64_t *heads, *tails;
    uint64_t mask;
} Names;

static inline void key_words(const uint8_t *p, Py_ssize_t n, uint64_t *head, uint64_t *tail) {
    if (n >= 8) {
        memcpy(head, p, 8);
        memcpy(tail, p + n - 8, 8);
    } else {
        uint64_t w = 0;
        for (Py_ssize_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
        *head = *tail = w;
    }
}

static inline uint64_t key_hash(uint64_t head, uint64_t tail, Py_ssize_t n) {
    uint64_t h = (head ^ ((tail << 29) | (tail >> 35)) ^ (uint64_t)n) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 32);
}

static int names_init(Names *t, Column *cols, Py_ssize_t ncols) {
    uint64_t size = 16;
    while (size < (uint64_t)ncols * 4) size *= 2;
    t->cols = cols;
    t->ncols = ncols;
    t->mask = size - 1;
    t->slots = malloc(size * sizeof(int32_t));
    t->heads = malloc((size_t)(ncols ? ncols : 1) * 8);
    t->tails = malloc((size_t)(ncols ? ncols : 1) * 8);
    if (!t->slots || !t->heads || !t->tails) return -1;
    memset(t->slots, 0xff, size * sizeof(int32_t));
    for (Py_ssize_t i = 0; i < ncols; i++) {
        key_words((const uint8_t *)cols[i].name, cols[i].name_len, &t->heads[i], &t->tails[i]);
        uint64_t h = key_hash(t->heads[i], t->tails[i], cols[i].name_len) & t->mask;
        while (t->slots[h] >= 0) h = (h + 1) & t->mask;
        t->slots[h] = (int32_t)i;
    }
    return 0;
}

static void names_free(Names *t) {
    free(t->slots);
    free(t->heads);
    free(t->tails);
}

static inline Column *find_column(const Names *t, Span key) {
    Py_ssize_t len = key.end - key.p;
    uint64_t head, tail;
    key_words(key.p, len, &head, &tail);
    for (uint64_t h = key_hash(head, tail, len) & t->mask; t->slots[h] >= 0; h = (h + 1) & t->mask) {
        int32_t i = t->slots[h];
        Column *c = &t->cols[i];
        if (c->name_len == len && t->heads[i] == head && t->tails[i] == tail &&
            (len <= 16 || memcmp(c->name + 8, key.p + 8, (size_t)len - 16) == 0))
            return c;
    }
    return NULL;
}

static int read_list(int kind, Span list, Column *c, const char **what) {
    static const char *malformed[] = {"", "malformed bytes_list", "malformed float_list", "malformed int64_list"};
    int status = read_values(kind, list, c);
    if (status == LIST_OK) return 1;
    *what = status == LIST_OUT_OF_MEMORY ? "out of memory" : malformed[kind];
    return 0;
}

static int valid_utf8(const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        uint8_t b = *p;
        if (b < 0x80) { p++; continue; }
        int n;
        uint32_t cp;
        if ((b & 0xE0) == 0xC0) { n = 1; cp = b & 0x1F; }
        else if ((b & 0xF0) == 0xE0) { n = 2; cp = b & 0x0F; }
        else if ((b & 0xF8) == 0xF0) { n = 3; cp = b & 0x07; }
        else return 0;
        if (end - p <= n) return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* A feature outside the schema is not kept, but checked as protobuf would
 * parse it, so that a record tfx-bsl refuses is refused here too. */
static int check_feature(Span key, Span value, const char **what) {
    if (!valid_utf8(key.p, key.end)) { *what = "a feature name that is not UTF-8"; return 0; }
    uint64_t tag;
    while (value.p && value.p < value.end) {
        if (!read_tag(&value, &tag)) goto bad;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field >= 1 && field <= 3 && wt == 2) {
            Span list;
            if (!read_span(&value, &list)) goto bad;
            if (!read_list(field, list, NULL, what)) return 0;
        } else if (!skip_field(&value, wt)) goto bad;
    }
    return 1;
bad:
    *what = "malformed Feature";
    return 0;
}

/* One map entry of Features; 1 on success, 0 with *what set. An entry with
 * no value or a Feature with no list is a missing feature (as protobuf reads it). */
static int read_entry(Span s, const Names *names, Py_ssize_t row, const char **what) {
    static const uint8_t nothing[1];
    Span key = {nothing, nothing}, value = {NULL, NULL};
    uint64_t tag;
    while (s.p < s.end) {
        if (!read_tag(&s, &tag)) goto bad;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field == 1 && wt == 2) {
            if (key.p != nothing) { *what = "a map entry with two keys"; return 0; }
            if (!read_span(&s, &key)) goto bad;
        } else if (field == 2 && wt == 2) {
            if (value.p) { *what = "a map entry with two values"; return 0; }
            if (!read_span(&s, &value)) goto bad;
        } else if (!skip_field(&s, wt)) goto bad;
    }
    Column *c = find_column(names, key);
    if (!c) return check_feature(key, value, what);
    if (c->seen == row + 1) { *what = "a feature twice in one record"; return 0; }
    c->seen = row + 1;
    int kind = 0;
    Span list = {NULL, NULL};
    Span f = value;
    while (value.p && f.p < f.end) {
        if (!read_tag(&f, &tag)) goto bad;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field >= 1 && field <= 3 && wt == 2) {
            if (kind) { *what = "a Feature with two lists"; return 0; }
            kind = field;
            if (!read_span(&f, &list)) goto bad;
        } else if (!skip_field(&f, wt)) goto bad;
    }
    if (!kind) return 1;
    if (kind != c->kind) { *what = "a feature of another type than the schema's"; return 0; }
    c->present = row + 1;
    return read_list(kind, list, c, what);
bad:
    *what = "malformed map entry";
    return 0;
}

/* The next field 1 of wire type 2 (an embedded message) in s, skipping every
 * other field: 1 with *out set, 0 at the end of s, -1 if s is malformed. */
static int next_message(Span *s, Span *out, int *skipped) {
    uint64_t tag;
    while (s->p < s->end) {
        if (!read_tag(s, &tag)) return -1;
        if (tag == ((1 << 3) | 2)) return read_span(s, out) ? 1 : -1;
        if (skipped) *skipped = 1;
        if (!skip_field(s, tag & 7)) return -1;
    }
    return 0;
}

/* Example { Features features = 1 } with Features { repeated entry = 1 }. */
static int read_record(Span s, const Names *names, Py_ssize_t row, const char **what) {
    Span features, entry;
    int found, more;
    while ((found = next_message(&s, &features, NULL)) == 1) {
        while ((more = next_message(&features, &entry, NULL)) == 1)
            if (!read_entry(entry, names, row, what)) return 0;
        if (more < 0) break;
    }
    if (found == 0) return 1;
    *what = "not a tf.Example (malformed protobuf)";
    return 0;
}

static int decode_all(const uint8_t *data, Py_ssize_t size, const int64_t *starts, const int64_t *lengths,
                      Py_ssize_t rows, const Names *names, Failure *fail) {
    Column *cols = names->cols;
    Py_ssize_t ncols = names->ncols;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (starts[r] < 0 || lengths[r] < 0 || starts[r] + lengths[r] > size) {
            fail->what = "a record outside the buffer";
            fail->record = r;
            return 0;
        }
        Span s = {data + starts[r], data + starts[r] + lengths[r]};
        if (!read_record(s, names, r, &fail->what)) {
            fail->record = r;
            return 0;
        }
        for (Py_ssize_t i = 0; i < ncols; i++) {
            Column *c = &cols[i];
            c->offsets[r + 1] = c->count;
            if (c->present == r + 1)
                c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
            else
                c->nulls++;
        }
    }
    return 1;
}

static void free_columns(Column *cols, Py_ssize_t ncols) {
    if (!cols) return;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        free(cols[i].offsets);
        free(cols[i].validity);
        free(cols[i].values.data);
        free(cols[i].value_offsets.data);
    }
    free(cols);
}

static PyObject *column_result(Column *c, Py_ssize_t rows) {
    PyObject *validity = c->nulls
        ? PyBytes_FromStringAndSize((const char *)c->validity, (rows + 7) / 8)
        : (Py_INCREF(Py_None), Py_None);
    PyObject *offsets = PyBytes_FromStringAndSize((const char *)c->offsets, (rows + 1) * 8);
    PyObject *values = PyBytes_FromStringAndSize(c->values.data ? c->values.data : "", (Py_ssize_t)c->values.len);
    PyObject *value_offsets = c->kind == KIND_BYTES
        ? PyBytes_FromStringAndSize(c->value_offsets.data, (Py_ssize_t)c->value_offsets.len)
        : (Py_INCREF(Py_None), Py_None);
    if (!validity || !offsets || !values || !value_offsets) {
        Py_XDECREF(validity);
        Py_XDECREF(offsets);
        Py_XDECREF(values);
        Py_XDECREF(value_offsets);
        return NULL;
    }
    return Py_BuildValue("(NLLNNN)", validity, (long long)c->nulls, (long long)c->count, offsets, values,
                         value_offsets);
}

static int int64_buffer(PyObject *obj, Py_buffer *view, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 8 || !view->format || (strcmp(view->format, "l") && strcmp(view->format, "q") &&
                                                  strcmp(view->format, "<q") && strcmp(view->format, "=q"))) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous int64 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(data, starts, lengths, names, kinds) -> list\n\n"
"Decodes the records data[starts[i]:starts[i] + lengths[i]] (starts and lengths:\n"
"int64 arrays) into one entry per feature of ``names`` (bytes), whose types\n"
"``kinds`` gives as one byte each (1 BYTES, 2 FLOAT, 3 INT, the Feature field\n"
"numbers). Each entry is (validity bitmap or None, null count, value count,\n"
"int64 list offsets, values, int64 value offsets for BYTES or None).\n"
"Raises ValueError('record N: ...') for a record it does not decode.");

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *data_obj, *starts_obj, *lengths_obj, *names;
    Py_buffer data = {0}, starts = {0}, lengths = {0};
    const char *kinds;
    Py_ssize_t nkinds;
    Column *cols = NULL;
    Names table = {0};
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOOOy#", &data_obj, &starts_obj, &lengths_obj, &names, &kinds, &nkinds))
        return NULL;
    names = PySequence_Fast(names, "names must be a sequence of bytes");
    if (!names) return NULL;
    Py_ssize_t ncols = PySequence_Fast_GET_SIZE(names);
    if (ncols != nkinds) {
        PyErr_SetString(PyExc_ValueError, "names and kinds differ in length");
        goto done;
    }
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (int64_buffer(starts_obj, &starts, "starts") < 0) goto done;
    if (int64_buffer(lengths_obj, &lengths, "lengths") < 0) goto done;
    Py_ssize_t rows = starts.len / 8;
    if (lengths.len / 8 != rows) {
        PyErr_SetString(PyExc_ValueError, "starts and lengths differ in length");
        goto done;
    }
    cols = calloc((size_t)(ncols ? ncols : 1), sizeof(Column));
    if (!cols) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < ncols; i++) {
        Column *c = &cols[i];
        PyObject *name = PySequence_Fast_GET_ITEM(names, i);
        if (PyBytes_AsStringAndSize(name, (char **)&c->name, &c->name_len) < 0) goto done;
        c->kind = (unsigned char)kinds[i];
        if (c->kind < KIND_BYTES || c->kind > KIND_INT) {
            PyErr_Format(PyExc_ValueError, "kind %d of feature %zd is not 1, 2 or 3", c->kind, i);
            goto done;
        }
        c->offsets = calloc((size_t)rows + 1, 8);
        c->validity = calloc((size_t)(rows + 7) / 8 + 1, 1);
        if (!c->offsets || !c->validity) { PyErr_NoMemory(); goto done; }
        if (c->kind == KIND_BYTES) {
            if (buf_reserve(&c->value_offsets, 8)) { PyErr_NoMemory(); goto done; }
            memset(c->value_offsets.data, 0, 8);
            c->value_offsets.len = 8;
        }
    }

    if (names_init(&table, cols, ncols) < 0) { PyErr_NoMemory(); goto done; }
    Failure fail = {"a record it cannot decode", 0};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = decode_all(data.buf, data.len, starts.buf, lengths.buf, rows, &table, &fail);
    Py_END_ALLOW_THREADS
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "record %zd: %s", fail.record, fail.what);
        goto done;
    }
    result = PyList_New(ncols);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        PyObject *col = column_result(&cols[i], rows);
        if (!col) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, i, col);
    }
done:
    free_columns(cols, ncols);
    names_free(&table);
    if (data.obj) PyBuffer_Release(&data);
    if (starts.obj) PyBuffer_Release(&starts);
    if (lengths.obj) PyBuffer_Release(&lengths);
    Py_DECREF(names);
    return result;
}

/* ------------------------------------------------------------------ scan */

/* The features a set of records names, each with how many records hold it
 * with no list, a bytes_list, a float_list and an int64_list, and the record
 * (from 0) where each was first seen. Names are copied: the table outlives
 * the records. Open addressing on key_hash, grown at half full. */
typedef struct {
    char *name;
    Py_ssize_t len;
    uint64_t head, tail;
    int64_t counts[4], first[4];
} Seen;

typedef struct {
    Seen *items;
    Py_ssize_t n, cap;
    int32_t *slots;
    uint64_t mask;
} SeenTable;

static int seen_slots(SeenTable *t, uint64_t size) {
    int32_t *slots = malloc(size * sizeof(int32_t));
    if (!slots) return -1;
    memset(slots, 0xff, size * sizeof(int32_t));
    for (Py_ssize_t i = 0; i < t->n; i++) {
        Seen *s = &t->items[i];
        uint64_t h = key_hash(s->head, s->tail, s->len) & (size - 1);
        while (slots[h] >= 0) h = (h + 1) & (size - 1);
        slots[h] = (int32_t)i;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

static void seen_free(SeenTable *t) {
    for (Py_ssize_t i = 0; i < t->n; i++) free(t->items[i].name);
    free(t->items);
    free(t->slots);
}

/* The entry of ``key``, added if new (NULL with *what set: out of memory, or
 * a new name that is not UTF-8). */
static Seen *seen_find(SeenTable *t, Span key, const char **what) {
    Py_ssize_t len = key.end - key.p;
    uint64_t head, tail;
    key_words(key.p, len, &head, &tail);
    uint64_t h = key_hash(head, tail, len) & t->mask;
    for (; t->slots[h] >= 0; h = (h + 1) & t->mask) {
        Seen *s = &t->items[t->slots[h]];
        if (s->len == len && s->head == head && s->tail == tail && memcmp(s->name, key.p, (size_t)len) == 0)
            return s;
    }
    if (!valid_utf8(key.p, key.end)) { *what = "a feature name that is not UTF-8"; return NULL; }
    *what = "out of memory";
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 64;
        Seen *items = realloc(t->items, (size_t)cap * sizeof(Seen));
        if (!items) return NULL;
        t->items = items;
        t->cap = cap;
    }
    Seen *s = &t->items[t->n];
    memset(s, 0, sizeof(Seen));
    s->name = malloc((size_t)len + 1);
    if (!s->name) return NULL;
    memcpy(s->name, key.p, (size_t)len);
    s->len = len;
    s->head = head;
    s->tail = tail;
    for (int k = 0; k < 4; k++) s->first[k] = -1;
    t->slots[h] = (int32_t)t->n++;
    if ((uint64_t)t->n * 2 > t->mask && seen_slots(t, (t->mask + 1) * 2) < 0) return NULL;
    return s;
}

enum { SCAN_EXAMPLE, SCAN_FOREIGN, SCAN_MALFORMED, SCAN_OUT_OF_MEMORY };

/* One map entry of Features, as protobuf merges it (the last key, value and
 * list win): counts its feature's kind. Fields a tf.Example does not have set
 * *foreign. */
static int scan_entry(Span s, SeenTable *t, Py_ssize_t row, const char **what, int *foreign) {
    static const uint8_t nothing[1];
    static const char *malformed[] = {"", "malformed bytes_list", "malformed float_list", "malformed int64_list"};
    Span key = {nothing, nothing}, value = {NULL, NULL};
    uint64_t tag;
    while (s.p < s.end) {
        if (!read_tag(&s, &tag)) goto bad;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if ((field == 1 || field == 2) && wt == 2) {
            if (!read_span(&s, field == 1 ? &key : &value)) goto bad;
        } else {
            *foreign = 1;
            if (!skip_field(&s, wt)) goto bad;
        }
    }
    int kind = 0;
    while (value.p && value.p < value.end) {
        if (!read_tag(&value, &tag)) { *what = "malformed Feature"; return SCAN_MALFORMED; }
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field >= 1 && field <= 3 && wt == 2) {
            Span list;
            if (!read_span(&value, &list)) { *what = "malformed Feature"; return SCAN_MALFORMED; }
            if (read_values(field, list, NULL) != LIST_OK) { *what = malformed[field]; return SCAN_MALFORMED; }
            kind = field;
        } else {
            *foreign = 1;
            if (!skip_field(&value, wt)) { *what = "malformed Feature"; return SCAN_MALFORMED; }
        }
    }
    Seen *seen = seen_find(t, key, what);
    if (!seen) return **what == 'o' ? SCAN_OUT_OF_MEMORY : SCAN_MALFORMED;
    seen->counts[kind]++;
    if (seen->first[kind] < 0) seen->first[kind] = row;
    return SCAN_EXAMPLE;
bad:
    *what = "malformed map entry";
    return SCAN_MALFORMED;
}

/* What one record is: a tf.Example, a message protobuf parses as one but with
 * fields a tf.Example does not have (another kind of message), or malformed. */
static int scan_record(Span s, SeenTable *t, Py_ssize_t row, const char **what) {
    int foreign = 0, found, more;
    Span features, entry;
    while ((found = next_message(&s, &features, &foreign)) == 1) {
        while ((more = next_message(&features, &entry, &foreign)) == 1) {
            int status = scan_entry(entry, t, row, what, &foreign);
            if (status != SCAN_EXAMPLE) return status;
        }
        if (more < 0) goto bad;
    }
    if (found < 0) goto bad;
    if (foreign) *what = "fields a tf.Example does not have";
    return foreign ? SCAN_FOREIGN : SCAN_EXAMPLE;
bad:
    *what = "malformed protobuf";
    return SCAN_MALFORMED;
}

PyDoc_STRVAR(scan_doc,
"scan(data, starts, lengths) -> (features, statuses, first_malformed)\n\n"
"Reads the records data[starts[i]:starts[i] + lengths[i]] for the features\n"
"they name. ``features``: (name, counts, firsts) per feature in the order\n"
"first seen, where counts[k] is how many records hold it with no list (k = 0),\n"
"a bytes_list (1), a float_list (2) or an int64_list (3) and firsts[k] the\n"
"first of them (-1 for none). ``statuses``: one byte per record, 0 a tf.Example,\n"
"1 a message with fields a tf.Example does not have, 2 malformed (its features\n"
"are not counted). ``first_malformed``: (record, reason) of the first\n"
"malformed record, or None.");

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *data_obj, *starts_obj, *lengths_obj;
    Py_buffer data = {0}, starts = {0}, lengths = {0};
    SeenTable table = {0};
    PyObject *result = NULL, *features = NULL, *statuses = NULL, *first = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &data_obj, &starts_obj, &lengths_obj)) return NULL;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (int64_buffer(starts_obj, &starts, "starts") < 0) goto done;
    if (int64_buffer(lengths_obj, &lengths, "lengths") < 0) goto done;
    Py_ssize_t rows = starts.len / 8;
    if (lengths.len / 8 != rows) {
        PyErr_SetString(PyExc_ValueError, "starts and lengths differ in length");
        goto done;
    }
    statuses = PyBytes_FromStringAndSize(NULL, rows);
    if (!statuses || seen_slots(&table, 64) < 0) { PyErr_NoMemory(); goto done; }
    uint8_t *status = (uint8_t *)PyBytes_AS_STRING(statuses);
    const uint8_t *p = data.buf;
    const int64_t *st = starts.buf, *ln = lengths.buf;
    Py_ssize_t bad = -1, outside = -1;
    const char *bad_what = NULL;
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (st[r] < 0 || ln[r] < 0 || st[r] + ln[r] > data.len) { outside = r; break; }
        const char *what = NULL;
        Span s = {p + st[r], p + st[r] + ln[r]};
        int k = scan_record(s, &table, r, &what);
        if (k == SCAN_OUT_OF_MEMORY) { oom = 1; break; }
        status[r] = (uint8_t)k;
        if (k == SCAN_MALFORMED && bad < 0) { bad = r; bad_what = what; }
    }
    Py_END_ALLOW_THREADS
    if (oom) { PyErr_NoMemory(); goto done; }
    if (outside >= 0) {
        PyErr_Format(PyExc_ValueError, "record %zd: a record outside the buffer", outside);
        goto done;
    }
    features = PyList_New(table.n);
    if (!features) goto done;
    for (Py_ssize_t i = 0; i < table.n; i++) {
        Seen *s = &table.items[i];
        PyObject *item = Py_BuildValue("(y#(LLLL)(LLLL))", s->name, s->len,
                                       (long long)s->counts[0], (long long)s->counts[1],
                                       (long long)s->counts[2], (long long)s->counts[3],
                                       (long long)s->first[0], (long long)s->first[1],
                                       (long long)s->first[2], (long long)s->first[3]);
        if (!item) goto done;
        PyList_SET_ITEM(features, i, item);
    }
    if (bad >= 0) first = Py_BuildValue("(ns)", bad, bad_what);
    else first = (Py_INCREF(Py_None), Py_None);
    if (!first) goto done;
    result = PyTuple_Pack(3, features, statuses, first);
done:
    Py_XDECREF(features);
    Py_XDECREF(statuses);
    Py_XDECREF(first);
    seen_free(&table);
    if (data.obj) PyBuffer_Release(&data);
    if (starts.obj) PyBuffer_Release(&starts);
    if (lengths.obj) PyBuffer_Release(&lengths);
    return result;
}

PyDoc_STRVAR(frame_doc,
"frame(data, pos) -> (heads, end)\n\n"
"The offsets (int64 bytes) of the TFRecords that lie whole in ``data`` from\n"
"``pos`` on, and the offset after the last of them: where a record runs past\n"
"the end of ``data``, or ``len(data)``. Lengths are not CRC-checked.");

static PyObject *frame(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n", &data, &pos)) return NULL;
    const uint8_t *p = data.buf;
    uint64_t size = (uint64_t)data.len, at = pos < 0 ? 0 : (uint64_t)pos;
    Buf heads = {0};
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    while (at + 12 <= size) {
        uint64_t length;
        memcpy(&length, p + at, 8);
        if (size - at < 16 || length > size - at - 16) break;
        if (buf_reserve(&heads, 8)) { oom = 1; break; }
        int64_t head = (int64_t)at;
        memcpy(heads.data + heads.len, &head, 8);
        heads.len += 8;
        at += 16 + length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (oom) {
        free(heads.data);
        return PyErr_NoMemory();
    }
    PyObject *out = Py_BuildValue("(y#K)", heads.data ? heads.data : "", (Py_ssize_t)heads.len,
                                  (unsigned long long)at);
    free(heads.data);
    return out;
}

/* ---------------------------------------------------------------- CRC32C */

/* Slicing-by-8 tables: crc_tables[k][b] is the CRC of byte b followed by k zero bytes. */
static uint32_t crc_tables[8][256];

static void crc_table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_tables[k][i] = (crc_tables[k - 1][i] >> 8) ^ crc_tables[0][crc_tables[k - 1][i] & 0xFF];
}

static uint32_t crc32c_table(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (; n >= 8; p += 8, n -= 8) { /* little-endian hosts only (see the #error above) */
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = crc_tables[7][lo & 0xFF] ^ crc_tables[6][(lo >> 8) & 0xFF] ^ crc_tables[5][(lo >> 16) & 0xFF] ^
              crc_tables[4][lo >> 24] ^ crc_tables[3][hi & 0xFF] ^ crc_tables[2][(hi >> 8) & 0xFF] ^
              crc_tables[1][(hi >> 16) & 0xFF] ^ crc_tables[0][hi >> 24];
    }
    while (n--) crc = crc_tables[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSE42_PATH 1
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(const uint8_t *p, size_t n) {
    uint64_t crc = 0xFFFFFFFFu;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = __builtin_ia32_crc32di(crc, v);
    }
    uint32_t c = (uint32_t)crc;
    while (n--) c = __builtin_ia32_crc32qi(c, *p++);
    return ~c;
}
#endif

static int use_sse42;

static inline uint32_t masked_crc32c_by(const uint8_t *p, size_t n, int table) {
#ifdef HAVE_SSE42_PATH
    uint32_t crc = use_sse42 && !table ? crc32c_sse42(p, n) : crc32c_table(p, n);
#else
    (void)table;
    uint32_t crc = crc32c_table(p, n);
#endif
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

static inline uint32_t masked_crc32c(const uint8_t *p, size_t n) { return masked_crc32c_by(p, n, 0); }

PyDoc_STRVAR(check_crcs_doc,
"check_crcs(data, heads) -> (index, which)\n\n"
"Checks both CRCs of the framed records whose headers are at ``heads[i]`` in\n"
"``data`` (int64; the last entry is the end of the last record). Returns\n"
"(-1, '') if all match, else the index of the first record that fails and\n"
"'length' or 'data'.");

static PyObject *check_crcs(PyObject *self, PyObject *args) {
    PyObject *data_obj, *heads_obj;
    Py_buffer data = {0}, heads = {0};
    if (!PyArg_ParseTuple(args, "OO", &data_obj, &heads_obj)) return NULL;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (int64_buffer(heads_obj, &heads, "heads") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const uint8_t *p = data.buf;
    const int64_t *h = heads.buf;
    Py_ssize_t n = heads.len / 8 - 1, bad = -1;
    const char *which = "";
    int out_of_range = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t at = h[i];
        if (at < 0 || at + 16 > data.len) { out_of_range = 1; break; }
        uint64_t length;
        uint32_t want;
        memcpy(&length, p + at, 8);
        if (length > (uint64_t)(data.len - at - 16)) { out_of_range = 1; break; }
        memcpy(&want, p + at + 8, 4);
        if (masked_crc32c(p + at, 8) != want) { bad = i; which = "length"; break; }
        memcpy(&want, p + at + 12 + length, 4);
        if (masked_crc32c(p + at + 12, (size_t)length) != want) { bad = i; which = "data"; break; }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&heads);
    if (out_of_range) {
        PyErr_SetString(PyExc_ValueError, "a record outside the buffer");
        return NULL;
    }
    return Py_BuildValue("(ns)", bad, which);
}

PyDoc_STRVAR(crc32c_doc,
"masked_crc32c(data, by_table=False) -> int\n\n"
"TFRecord's masked CRC32C of ``data`` (``by_table``: without SSE 4.2, for tests).");

static PyObject *py_masked_crc32c(PyObject *self, PyObject *args) {
    Py_buffer data;
    int by_table = 0;
    if (!PyArg_ParseTuple(args, "y*|p", &data, &by_table)) return NULL;
    uint32_t crc;
    Py_BEGIN_ALLOW_THREADS
    crc = masked_crc32c_by(data.buf, (size_t)data.len, by_table);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {"frame", frame, METH_VARARGS, frame_doc},
    {"scan", scan, METH_VARARGS, scan_doc},
    {"check_crcs", check_crcs, METH_VARARGS, check_crcs_doc},
    {"masked_crc32c", py_masked_crc32c, METH_VARARGS, crc32c_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_wire",
    "TFRecord framing and CRCs and tf.Example decoding in C (see frame, check_crcs and decode).", -1, methods,
};

PyMODINIT_FUNC PyInit__wire(void) {
    crc_table_init();
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    use_sse42 = __builtin_cpu_supports("sse4.2");
#endif
    return PyModule_Create(&module);
}
