/*
 * llmcassette._speedups: the passes of the cold reader over a stream's bytes, in C.
 *
 * A cold start reads each recorded stream once: its body is a literal block of about 25 KB whose
 * end and dedent took a regex search and a split and join (about 400k instructions a 200-event
 * stream); its chunk lengths and offsets are flow lists of a few hundred numbers checked by a
 * regex and two replaces (about 250k); the file's characters are checked by 30 searches (about
 * 100k a stream), and it is cut into items by a scan of its every line break (about 150k). Each
 * function here is one of those passes, and computes exactly what the Python function beside its
 * caller computes (`_layout._block_python`, `_lazy._block_bytes_python` and `bytes.isascii`
 * for a stream's body cut out of its file's bytes, `_layout._plain_characters_python`,
 * `_plain._times_python`, `_plain._lengths_format_python`, `TextLengths._cut_python`,
 * `_lazy._first_column_python`), and the JSON decoder's hook for each object of a body
 * (`_layout._no_duplicates`); the replay cache's checksum of an entry, written at a cold start
 * and checked at each warm one, computes `zlib.adler32`. That code stays the fallback, when the
 * extension is not built or is turned off (LLMCASSETTE_PURE_PYTHON=1), and the oracle of
 * tests/test_speedups.py. Only the CPython C API is used (and SSE2's intrinsics, where the
 * compiler has them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* SSE2's vectors, where the compiler has them (every x86-64 one): the loops that use them have
 * a plain loop beside them for any other machine, which also does the bytes a vector leaves. */
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define SPEEDUPS_SSE2 1
#endif

/* The first line break in text[from:to], or -1 (-2 with an exception set). A text of one byte a
 * character is searched with memchr itself: PyUnicode_FindChar's own checks cost as much as the
 * search, over a line of a hundred characters. */
static Py_ssize_t
next_break(PyObject *text, int kind, const void *data, Py_ssize_t from, Py_ssize_t to)
{
    if (from >= to) {
        return -1;
    }
    if (kind == PyUnicode_1BYTE_KIND) {
        const char *found = memchr((const char *)data + from, '\n', (size_t)(to - from));
        return found == NULL ? -1 : found - (const char *)data;
    }
    return PyUnicode_FindChar(text, '\n', from, to, 1);
}

/* Whether the `indent` characters from `at` (all within the text) are spaces. A text of one byte
 * a character is compared eight bytes at a time (a copy of a fixed size is one load): reading it
 * a character at a time, for any width, cost about 6 instructions a character, twice for each
 * line of a block (a third of a stream's block), and a call of memcmp as much. */
static int
indented(int kind, const void *data, Py_ssize_t at, Py_ssize_t indent)
{
    Py_ssize_t i = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *line = (const unsigned char *)data + at;
        for (; i + 8 <= indent; i += 8) {
            uint64_t word;
            memcpy(&word, line + i, 8);
            if (word != UINT64_C(0x2020202020202020)) {
                return 0;
            }
        }
    }
    for (; i < indent; i++) {
        if (PyUnicode_READ(kind, data, at + i) != ' ') {
            return 0;
        }
    }
    return 1;
}

/* A block's first pass: where it ends (`*end`: where the first line neither empty nor indented
 * `indent` spaces starts, or `size`), and how many line breaks in it are followed by the
 * indentation (`*dedents`: each loses it in the content). 0, or -1 with an exception set. `text`
 * is only looked at for a text wider than a byte a character (None for bytes). */
static int
block_bounds(PyObject *text, int kind, const void *data, Py_ssize_t size, Py_ssize_t first_end,
             Py_ssize_t indent, Py_ssize_t *end, Py_ssize_t *dedents)
{
    *end = size;
    *dedents = 0;
    Py_ssize_t at = first_end; /* (always at a line break inside the block) */
    while (at + 1 < size) {
        Py_ssize_t next = at + 1;
        if (PyUnicode_READ(kind, data, next) == '\n') {
            at = next; /* an empty line: part of the block */
            continue;
        }
        if (indent > size - next || !indented(kind, data, next, indent)) {
            *end = next; /* a line neither empty nor indented as deep: it ends the block */
            break;
        }
        (*dedents)++;
        Py_ssize_t found = next_break(text, kind, data, next + indent, size);
        if (found == -2) {
            return -1;
        }
        if (found < 0) {
            break; /* the last line, without a line break: the block runs to the text's end */
        }
        at = found;
    }
    return 0;
}

/* A block's second pass: its lines from `from` to `end`, copied in the text's own width into
 * `out` (room for `length` characters) with `indent` spaces taken off after each line break that
 * has them. 0, or -1 with an exception set (SystemError when the passes disagree: a bug here,
 * never the text's; the caller's Python path is not a fallback for it). */
static int
block_copy(PyObject *text, int kind, const void *data, Py_ssize_t from, Py_ssize_t end, Py_ssize_t indent,
           char *out, Py_ssize_t length)
{
    const char *source = (const char *)data;
    Py_ssize_t written = 0;
    Py_ssize_t piece = from; /* the start of the text not copied yet */
    Py_ssize_t scan = from;
    for (;;) {
        Py_ssize_t found = next_break(text, kind, data, scan, end);
        if (found == -2) {
            return -1;
        }
        /* A line break followed, within the block, by the indentation ends a piece. */
        int cut = found >= 0 && found + indent < end && indented(kind, data, found + 1, indent);
        Py_ssize_t stop = found < 0 ? end : (cut ? found + 1 : -1);
        if (stop >= 0 && stop - piece > length - written) {
            written = -1; /* (never past the result's end: reported below) */
            break;
        }
        if (stop >= 0) {
            memcpy(out + written * kind, source + piece * kind, (size_t)(stop - piece) * (size_t)kind);
            written += stop - piece;
        }
        if (found < 0) {
            break;
        }
        if (cut) {
            piece = found + 1 + indent;
        }
        scan = found + 1;
    }
    if (written != length) {
        PyErr_SetString(PyExc_SystemError, "llmcassette: a literal block's passes disagree.");
        return -1;
    }
    return 0;
}

/* A block's content and its end as the pair the functions below give. */
static PyObject *
block_pair(PyObject *content, Py_ssize_t end)
{
    PyObject *where = PyLong_FromSsize_t(end);
    if (where == NULL) {
        Py_DECREF(content);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, content, where);
    Py_DECREF(content);
    Py_DECREF(where);
    return pair;
}

/*
 * literal_block(text, start, first_end, indent) -> (content, end)
 *
 * A literal block scalar whose first line starts at `start`, ends at `first_end` (its line break)
 * and is indented `indent` spaces (the caller checked it). The block goes on while each line
 * after the first is empty or starts with `indent` spaces; `end` is where the first other line
 * starts, or the text's length. `content` is text[start + indent:end] with `indent` spaces taken
 * off after each line break that has them: the same as
 *     "\n".join(text[start + indent:end].split("\n" + " " * indent))
 * since a separator holds one line break, at its start, so the split's matches never overlap.
 */
static PyObject *
literal_block(PyObject *module, PyObject *args)
{
    PyObject *text;
    Py_ssize_t start, first_end, indent;
    if (!PyArg_ParseTuple(args, "Unnn:literal_block", &text, &start, &first_end, &indent)) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) { /* (a string of the old API is made canonical first) */
        return NULL;
    }
#endif
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (indent < 1 || start < 0 || start + indent >= first_end || first_end >= size) {
        PyErr_SetString(PyExc_ValueError, "llmcassette: literal_block was given positions out of range.");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (PyUnicode_READ(kind, data, first_end) != '\n') {
        PyErr_SetString(PyExc_ValueError, "llmcassette: literal_block's first_end is not a line break.");
        return NULL;
    }
    Py_ssize_t end, dedents;
    if (block_bounds(text, kind, data, size, first_end, indent, &end, &dedents) < 0) {
        return NULL;
    }
    Py_ssize_t from = start + indent;
    Py_ssize_t length = end - from - dedents * indent;
    /* The lines, copied in the text's own width into a buffer the result is made from: an ASCII
     * text's result is ASCII, made in place; any other is made by PyUnicode_FromKindAndData,
     * which finds its widest character (the block may hold none of the text's widest). */
    if (PyUnicode_IS_ASCII(text)) {
        PyObject *result = PyUnicode_New(length, 127);
        if (result == NULL) {
            return NULL;
        }
        if (block_copy(text, kind, data, from, end, indent, (char *)PyUnicode_DATA(result), length) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        return block_pair(result, end);
    }
    char *buffer = PyMem_Malloc(length > 0 ? (size_t)length * (size_t)kind : 1);
    if (buffer == NULL) {
        return PyErr_NoMemory();
    }
    if (block_copy(text, kind, data, from, end, indent, buffer, length) < 0) {
        PyMem_Free(buffer);
        return NULL;
    }
    PyObject *result = PyUnicode_FromKindAndData(kind, buffer, length);
    PyMem_Free(buffer);
    if (result == NULL) {
        return NULL;
    }
    return block_pair(result, end);
}

/*
 * block_bytes(raw, start, first_end, indent, size) -> (content, end)
 *
 * `literal_block` of the UTF-8 text raw[:size], in its bytes: a block's line breaks and
 * indentation are ASCII, which UTF-8 encodes as themselves and in no other character, so the
 * block ends at the same line and its content is the bytes of literal_block's (as
 * `_lazy._block_bytes_python` computes it). A stream's body is cut out of its file this way,
 * with no decode of its text and no encode of the content (see `_lazy._lists_apart`).
 */
static PyObject *
block_bytes(PyObject *module, PyObject *args)
{
    PyObject *raw;
    Py_ssize_t start, first_end, indent, size;
    if (!PyArg_ParseTuple(args, "Snnnn:block_bytes", &raw, &start, &first_end, &indent, &size)) {
        return NULL;
    }
    if (size > PyBytes_GET_SIZE(raw) || indent < 1 || start < 0 || start + indent >= first_end || first_end >= size) {
        PyErr_SetString(PyExc_ValueError, "llmcassette: block_bytes was given positions out of range.");
        return NULL;
    }
    const char *data = PyBytes_AS_STRING(raw);
    if (data[first_end] != '\n') {
        PyErr_SetString(PyExc_ValueError, "llmcassette: block_bytes's first_end is not a line break.");
        return NULL;
    }
    Py_ssize_t end, dedents;
    if (block_bounds(NULL, PyUnicode_1BYTE_KIND, data, size, first_end, indent, &end, &dedents) < 0) {
        return NULL;
    }
    Py_ssize_t from = start + indent;
    Py_ssize_t length = end - from - dedents * indent;
    PyObject *result = PyBytes_FromStringAndSize(NULL, length);
    if (result == NULL) {
        return NULL;
    }
    if (block_copy(NULL, PyUnicode_1BYTE_KIND, data, from, end, indent, PyBytes_AS_STRING(result), length) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return block_pair(result, end);
}

/*
 * ascii(data: bytes) -> bool: data.isascii(), in SSE2's vectors where the compiler has them (an OR
 * of 64 bytes at a time, its high bits looked at once: about 0.15 instructions a byte, where
 * CPython's word loop took 0.9, 20k of a 25 KB stream's body cut out of its file, whose text is
 * checked for being UTF-8 by this first, see `_lazy._body_apart`).
 */
static PyObject *
ascii(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: ascii takes bytes.");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    Py_ssize_t at = 0;
#ifdef SPEEDUPS_SSE2
    for (; size - at >= 64; at += 64) {
        __m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + at)),
                                 _mm_loadu_si128((const __m128i *)(s + at + 16)));
        __m128i b = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + at + 32)),
                                 _mm_loadu_si128((const __m128i *)(s + at + 48)));
        if (_mm_movemask_epi8(_mm_or_si128(a, b))) {
            Py_RETURN_FALSE;
        }
    }
#endif
    unsigned char high = 0;
    for (; at < size; at++) {
        high |= s[at];
    }
    return PyBool_FromLong(!(high & 0x80));
}

/* One decimal of a flow list of times (`_plain._DECIMAL`): 0 or 1 to 7 digits without a leading
 * zero, then optionally a dot and one or more digits; where it ends, or -1. */
static Py_ssize_t
time_decimal(const char *s, Py_ssize_t at, Py_ssize_t size)
{
    if (at >= size) {
        return -1;
    }
    if (s[at] == '0') {
        at++;
    }
    else if (s[at] >= '1' && s[at] <= '9') {
        Py_ssize_t last = at + 7;
        at++;
        while (at < size && at < last && s[at] >= '0' && s[at] <= '9') {
            at++;
        }
    }
    else {
        return -1;
    }
    if (at + 1 < size && s[at] == '.' && s[at + 1] >= '0' && s[at + 1] <= '9') {
        at += 2;
        while (at < size && s[at] >= '0' && s[at] <= '9') {
            at++;
        }
    }
    return at;
}

static Py_ssize_t
skip_blanks(const char *s, Py_ssize_t at, Py_ssize_t size)
{
    while (at < size && (s[at] == ' ' || s[at] == '\n')) {
        at++;
    }
    return at;
}

/*
 * plain_times(text: bytes) -> bool: whether `_plain._PLAIN_TIMES` matches all of `text`. Every
 * repeat of that pattern is possessive and its alternatives start differently, so it matches
 * without going back: one pass, each step the only one the pattern allows.
 */
static PyObject *
plain_times(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: plain_times takes bytes.");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    Py_ssize_t at = time_decimal(s, skip_blanks(s, 0, size), size);
    while (at >= 0) {
        at = skip_blanks(s, at, size);
        if (at == size) {
            Py_RETURN_TRUE;
        }
        if (s[at] != ',') {
            break;
        }
        at = time_decimal(s, skip_blanks(s, at + 1, size), size);
    }
    Py_RETURN_FALSE;
}

/*
 * lengths_format(text: bytes) -> bytes | None: the `struct` format `_plain.plain_lengths` makes of
 * a flow list of chunk lengths (each separator, a comma and a space or a comma, a line break and
 * eight spaces, made an `s`, and one `s` after the last), or None where it declines the text:
 * anything but runs of digits, none starting with a zero, each ended by one `s`. (An `s` in the
 * text is kept as it is, as the replaces keep it.)
 */
static PyObject *
lengths_format(PyObject *module, PyObject *arg)
{
    static const char wrap[] = ",\n        ";
    const Py_ssize_t wrap_size = sizeof(wrap) - 1;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: lengths_format takes bytes.");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    /* The format is never longer than the text and its last `s`. */
    PyObject *format = PyBytes_FromStringAndSize(NULL, size + 1);
    if (format == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(format);
    Py_ssize_t written = 0;
    char previous = 's'; /* (the format must start with a digit from 1: as if after an `s`) */
    for (Py_ssize_t at = 0; at <= size; at++) {
        char c;
        if (at == size) {
            c = 's';
        }
        else if (s[at] == ',' && size - at >= wrap_size && memcmp(s + at, wrap, (size_t)wrap_size) == 0) {
            c = 's';
            at += wrap_size - 1;
        }
        else if (s[at] == ',' && at + 1 < size && s[at + 1] == ' ') {
            c = 's';
            at += 1;
        }
        else {
            c = s[at];
        }
        if (c == 's' ? previous == 's' : (c < '0' || c > '9' || (c == '0' && previous == 's'))) {
            Py_DECREF(format);
            Py_RETURN_NONE;
        }
        out[written++] = c;
        previous = c;
    }
    if (written != size + 1 && _PyBytes_Resize(&format, written) < 0) {
        return NULL;
    }
    return format;
}

/*
 * first_column(raw: bytes, start: int) -> list[int]: where each line break from `start` on is
 * followed by a line that starts at the first column with text (neither a space nor a line
 * break): the starts of `_lazy._FIRST_COLUMN`'s matches. Such lines are a few per item, and the
 * regex's scan for its line break went a byte at a time (about 5 instructions a byte of a
 * file); memchr goes a vector at a time.
 */
static PyObject *
first_column(PyObject *module, PyObject *args)
{
    PyObject *raw;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "Sn:first_column", &raw, &start)) {
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(raw);
    Py_ssize_t size = PyBytes_GET_SIZE(raw);
    PyObject *found = PyList_New(0);
    if (found == NULL) {
        return NULL;
    }
    Py_ssize_t at = start < 0 ? 0 : start;
    while (at + 1 < size) {
        const char *line_break = memchr(s + at, '\n', (size_t)(size - 1 - at));
        if (line_break == NULL) {
            break;
        }
        at = line_break - s;
        char next = s[at + 1];
        if (next != ' ' && next != '\n') {
            PyObject *where = PyLong_FromSsize_t(at);
            if (where == NULL || PyList_Append(found, where) < 0) {
                Py_XDECREF(where);
                Py_DECREF(found);
                return NULL;
            }
            Py_DECREF(where);
        }
        at++;
    }
    return found;
}

/*
 * cut(format: bytes, content: bytes) -> tuple[bytes, ...] | None: `content` cut into the chunks
 * whose lengths `format` gives (a format `lengths_format` made: runs of digits, each ended by an
 * `s`), or None when they do not add up to its length: what struct.Struct(format).unpack(content)
 * gives, or its error. Making the Struct parsed its format into a table first (37k instructions
 * for 200 lengths), for one use.
 */
static PyObject *
cut(PyObject *module, PyObject *args)
{
    PyObject *format, *content;
    if (!PyArg_ParseTuple(args, "SS:cut", &format, &content)) {
        return NULL;
    }
    const char *f = PyBytes_AS_STRING(format);
    Py_ssize_t f_size = PyBytes_GET_SIZE(format);
    Py_ssize_t size = PyBytes_GET_SIZE(content);
    /* First the lengths' count and sum: a sum past the content's size is None at once, before
     * it could overflow. */
    Py_ssize_t count = 0, total = 0, length = -1;
    for (Py_ssize_t at = 0; at < f_size; at++) {
        char c = f[at];
        if (c >= '0' && c <= '9') {
            length = (length < 0 ? 0 : length * 10) + (c - '0');
            if (length > size) {
                Py_RETURN_NONE;
            }
        }
        else if (c == 's' && length >= 0) {
            count++;
            total += length;
            if (total > size) {
                Py_RETURN_NONE;
            }
            length = -1;
        }
        else {
            PyErr_SetString(PyExc_ValueError, "llmcassette: cut was given a format lengths_format does not make.");
            return NULL;
        }
    }
    if (length >= 0) {
        PyErr_SetString(PyExc_ValueError, "llmcassette: cut was given a format lengths_format does not make.");
        return NULL;
    }
    if (total != size) {
        Py_RETURN_NONE;
    }
    PyObject *chunks = PyTuple_New(count);
    if (chunks == NULL) {
        return NULL;
    }
    const char *body = PyBytes_AS_STRING(content);
    Py_ssize_t index = 0, offset = 0;
    length = 0;
    for (Py_ssize_t at = 0; at < f_size; at++) {
        if (f[at] != 's') {
            length = length * 10 + (f[at] - '0');
            continue;
        }
        PyObject *chunk = PyBytes_FromStringAndSize(body + offset, length);
        if (chunk == NULL) {
            Py_DECREF(chunks);
            return NULL;
        }
        PyTuple_SET_ITEM(chunks, index++, chunk);
        offset += length;
        length = 0;
    }
    return chunks;
}

/* Whether the bytes from `at` on start one of the characters beyond ASCII that YAML reads as a
 * line break or refuses (`_layout._OTHER_UTF8`): C1 controls, the line and paragraph
 * separators, the byte order mark, U+FFFE and U+FFFF. */
static int
other_utf8_at(const unsigned char *s, Py_ssize_t at, Py_ssize_t size)
{
    unsigned char lead = s[at];
    unsigned char second = at + 1 < size ? s[at + 1] : 0;
    unsigned char third = at + 2 < size ? s[at + 2] : 0;
    if (lead == 0xc2) {
        return second >= 0x80 && second <= 0x9f;
    }
    if (lead == 0xe2) {
        return second == 0x80 && (third == 0xa8 || third == 0xa9);
    }
    if (lead == 0xef) {
        return (second == 0xbb && third == 0xbf) || (second == 0xbf && (third == 0xbe || third == 0xbf));
    }
    return 0;
}

/* A control character YAML refuses raw or reads as a line break (`_layout._CONTROL`). */
#define CONTROL(b) (((b) < 0x20 && (b) != '\t' && (b) != '\n') || (b) == 0x7f)

/* Whether s[start:stop] holds a byte other than printable ASCII, a tab or a line break: a control
 * character, or a byte beyond ASCII. No branch but the loop's: an OR of every byte's test. In
 * SSE2's vectors, each byte is moved so that printable ASCII (0x20 to 0x7e) becomes the lowest
 * 95 signed bytes (x + 0x60: -128 to -34), and again so that a tab and a line break become the
 * lowest two (x + 0x77: -128 and -127): an addition and a comparison each, about 0.9
 * instructions a byte, where the compiler's vector loop of the tests as written took 1.6. (Each
 * lane keeps whether its bytes were all plain: a lane kept odd made the compiler negate each
 * comparison.) */
static int
odd_bytes(const unsigned char *s, Py_ssize_t start, Py_ssize_t stop)
{
    Py_ssize_t at = start;
#ifdef SPEEDUPS_SSE2
    const __m128i to_printable = _mm_set1_epi8(0x60), past_printable = _mm_set1_epi8(-33);
    const __m128i to_breaks = _mm_set1_epi8(0x77), past_breaks = _mm_set1_epi8(-126);
    __m128i plain = _mm_set1_epi8(-1); /* (each lane: every byte there so far was plain) */
    for (Py_ssize_t last = stop - 16; at <= last; at += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + at));
        __m128i printable = _mm_cmplt_epi8(_mm_add_epi8(x, to_printable), past_printable);
        __m128i line_break = _mm_cmplt_epi8(_mm_add_epi8(x, to_breaks), past_breaks);
        plain = _mm_and_si128(plain, _mm_or_si128(printable, line_break));
    }
    if (_mm_movemask_epi8(plain) != 0xffff) {
        return 1;
    }
#endif
    unsigned char odd_byte = 0;
    for (; at < stop; at++) {
        unsigned char b = s[at];
        odd_byte |= (unsigned char)(CONTROL(b) | (b >= 0x80));
    }
    return odd_byte != 0;
}

/*
 * plain_characters(raw: bytes) -> bool: `_layout.plain_characters`, in one pass. The text is
 * looked at in blocks, each first as a whole (`odd_bytes`), which tells most blocks clean at
 * well under an instruction a byte; only a block that holds a control character or a byte
 * beyond ASCII is looked at a byte at a time. (30 memchr searches and an isascii cost about 5
 * instructions a byte.)
 */
static PyObject *
plain_characters(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: plain_characters takes bytes.");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    const Py_ssize_t block = 4096;
    for (Py_ssize_t start = 0; start < size; start += block) {
        Py_ssize_t stop = size - start < block ? size : start + block;
        if (!odd_bytes(s, start, stop)) {
            continue;
        }
        for (Py_ssize_t at = start; at < stop; at++) {
            unsigned char b = s[at];
            if (CONTROL(b) || (b >= 0x80 && other_utf8_at(s, at, size))) {
                Py_RETURN_FALSE;
            }
        }
    }
    Py_RETURN_TRUE;
}

/*
 * json_object(declined, longest, pairs) -> dict: `_layout._no_duplicates`, the JSON decoder's hook
 * for each object (`pairs`, its keys and values in order), raising `declined` (the reader's
 * Unrecognised) where it raises it: a key given twice, or a key of `longest` characters or more.
 * The decoder is given it through functools.partial, which calls it without a Python frame: the
 * hook in Python cost as much as the rest of a 1 KB body's parse.
 */
static PyObject *
json_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: json_object takes an exception, a length and a list.");
        return NULL;
    }
    PyObject *declined = args[0];
    Py_ssize_t longest = PyLong_AsSsize_t(args[1]);
    if (longest == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *pairs = args[2];
    Py_ssize_t count = PyList_GET_SIZE(pairs);
    PyObject *object = PyDict_New();
    if (object == NULL) {
        return NULL;
    }
    int too_long = 0;
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *pair = PyList_GET_ITEM(pairs, index);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(object);
            PyErr_SetString(PyExc_TypeError, "llmcassette: json_object takes pairs.");
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_Check(key)) {
            Py_DECREF(object);
            PyErr_SetString(PyExc_TypeError, "llmcassette: json_object takes text keys.");
            return NULL;
        }
        too_long |= PyUnicode_GET_LENGTH(key) >= longest;
        if (PyDict_SetItem(object, key, PyTuple_GET_ITEM(pair, 1)) < 0) {
            Py_DECREF(object);
            return NULL;
        }
    }
    if (PyDict_GET_SIZE(object) != count || too_long) {
        Py_DECREF(object);
        PyErr_SetNone(declined);
        return NULL;
    }
    return object;
}

/* zlib's Adler-32 modulus; and the bytes summed before both sums are reduced: whole blocks of 32,
 * no more than zlib's NMAX (5552), the most whose sums stay within 32 bits from sums reduced
 * (255 n (n + 1) / 2 + (n + 1) (BASE - 1) < 2^32). */
#define ADLER_BASE 65521u
#define ADLER_BLOCK 32
#define ADLER_RUN (173 * ADLER_BLOCK)

#ifdef SPEEDUPS_SSE2
static uint32_t
lanes_sum(__m128i v)
{
    uint32_t lanes[4];
    _mm_storeu_si128((__m128i *)lanes, v);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

/* Adds `blocks` blocks of 32 bytes from `p` to the sums `a` and `b` (at most ADLER_RUN bytes, so
 * that nothing overflows): `a` gains their bytes; `b` gains `a` as it was before each byte and
 * that byte, that is 32 times `a` before each block, and each byte weighed by how many of the
 * block's sums hold it (32 for its first byte, 1 for its last). Both in SSE2's vectors: a
 * block's bytes summed by two `sad`s, weighed by four `madd`s. */
static void
adler_blocks(const unsigned char *p, Py_ssize_t blocks, uint32_t *a, uint32_t *b)
{
    const __m128i zero = _mm_setzero_si128();
    const __m128i weights1 = _mm_setr_epi16(32, 31, 30, 29, 28, 27, 26, 25);
    const __m128i weights2 = _mm_setr_epi16(24, 23, 22, 21, 20, 19, 18, 17);
    const __m128i weights3 = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9);
    const __m128i weights4 = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
    __m128i sums = zero;   /* the bytes' sum (in lanes 0 and 2) */
    __m128i before = zero; /* the bytes' sum before each block, summed */
    __m128i weighed = zero;
    for (Py_ssize_t i = 0; i < blocks; i++, p += ADLER_BLOCK) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i y = _mm_loadu_si128((const __m128i *)(p + 16));
        before = _mm_add_epi32(before, sums);
        sums = _mm_add_epi32(sums, _mm_add_epi32(_mm_sad_epu8(x, zero), _mm_sad_epu8(y, zero)));
        __m128i wx = _mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi8(x, zero), weights1),
                                   _mm_madd_epi16(_mm_unpackhi_epi8(x, zero), weights2));
        __m128i wy = _mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi8(y, zero), weights3),
                                   _mm_madd_epi16(_mm_unpackhi_epi8(y, zero), weights4));
        weighed = _mm_add_epi32(weighed, _mm_add_epi32(wx, wy));
    }
    /* (each term is part of what zlib's loop adds to `b` over these bytes, which fits 32 bits) */
    *b += (uint32_t)ADLER_BLOCK * *a * (uint32_t)blocks + (uint32_t)ADLER_BLOCK * lanes_sum(before)
          + lanes_sum(weighed);
    *a += lanes_sum(sums);
}
#endif

/*
 * adler32(data: bytes-like) -> int: zlib.adler32(data), the replay cache's checksum
 * (`_cache._checksum`). zlib's loop adds each byte to one sum and that sum to the other, about
 * 3.6 instructions a byte (90k a 25 KB stream, paid when its entry is written and again each
 * time it is read); here whole blocks of 32 bytes are summed in SSE2's vectors where the
 * compiler has them (every x86-64 one), about 0.7 instructions a byte, and the bytes left with
 * zlib's loop. The sums are those of zlib's loop, reduced at the ends of the same runs or
 * shorter ones, which gives the same value.
 */
static PyObject *
adler32(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)view.buf;
    Py_ssize_t left = view.len;
    uint32_t a = 1, b = 0;
    while (left > 0) {
        Py_ssize_t run = left < ADLER_RUN ? left : ADLER_RUN;
        left -= run;
#ifdef SPEEDUPS_SSE2
        Py_ssize_t blocks = run / ADLER_BLOCK;
        adler_blocks(p, blocks, &a, &b);
        p += blocks * ADLER_BLOCK;
        run -= blocks * ADLER_BLOCK;
#endif
        for (; run > 0; run--) {
            a += *p++;
            b += a;
        }
        a %= ADLER_BASE;
        b %= ADLER_BASE;
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong((unsigned long)((b << 16) | a));
}

/*
 * json_bytes(text, start, most_brackets, item_separator, key_separator, ensure_ascii, indent)
 *     -> (bytes | None, end, brackets) | None
 *
 * The JSON value that starts at text[start], as `_layout._json_bytes_python` reads it (the
 * reader's decoder, its checks that YAML reads the text alike, and the count of its brackets,
 * `[` and `{` anywhere in it), without building it: where it ends (a line break follows), that
 * count, and, with separators given, the bytes `_bodies.dump_json` writes of it in the format of
 * those separators, `ensure_ascii` and `indent` (`json.dumps`'s; None: on one line). A value is only read when
 * its text is the one `json.dumps` writes of it but for whitespace between tokens (keys and
 * texts in `json.dumps`'s escapes, numbers as Python writes them): then writing it again is
 * copying its tokens with the separators between them. Any other text is declined (None), the
 * Python path read instead: a text it refuses is always declined here, and a text it reads is
 * declined only when it is written otherwise than `json.dumps` would (an escape it would not
 * write, `-0`, a float that is not its own `repr`, an exponent), holds more than `most_brackets`
 * brackets, an object of more than `MOST_KEYS` keys, or a raw surrogate; or when whitespace
 * holds a tab or a CR, or a line break comes before a key's colon (YAML reads those otherwise).
 * Keys are compared as written: with every escape the one `json.dumps` writes, two keys are the
 * same text exactly when they are written alike.
 */
#define MOST_KEYS 256
#define LONGEST_KEY 900
#define MOST_INT_DIGITS 640 /* (the least `sys.set_int_max_str_digits` takes) */
#define MOST_DEPTH 200       /* (each level is a call here: deeper texts are declined) */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t size;
    int declined;            /* the text is not one read here */
    int failed;              /* an exception is set */
    char *out;               /* NULL: nothing written */
    Py_ssize_t used, capacity;
    const char *item_separator, *key_separator;
    Py_ssize_t item_length, key_length;
    int ascii;
    Py_ssize_t indent;       /* spaces a level, as `json.dumps`'s `indent`; -1: on one line */
    Py_ssize_t brackets, most_brackets;
    int depth;
    Py_ssize_t *keys;        /* each key of the open objects: its start and end, in pairs */
    Py_ssize_t key_count, key_capacity;
} JsonText;

#define JT_READ(j, at) PyUnicode_READ((j)->kind, (j)->data, (at))

static int
jt_room(JsonText *j, Py_ssize_t more)
{
    if (j->out == NULL) {
        return 0;
    }
    if (j->used + more <= j->capacity) {
        return 0;
    }
    Py_ssize_t capacity = j->capacity * 2 + more;
    char *grown = PyMem_Realloc(j->out, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        j->failed = 1;
        return -1;
    }
    j->out = grown;
    j->capacity = capacity;
    return 0;
}

static int jt_write(JsonText *j, const char *bytes, Py_ssize_t length);

/* In an indented format, a line break and the indentation of `levels` levels. */
static int
jt_line(JsonText *j, Py_ssize_t levels)
{
    if (j->out == NULL || j->indent < 0) {
        return 0;
    }
    Py_ssize_t spaces = levels * j->indent;
    if (jt_room(j, spaces + 1) < 0) {
        return -1;
    }
    j->out[j->used++] = '\n';
    memset(j->out + j->used, ' ', (size_t)spaces);
    j->used += spaces;
    return 0;
}

static int
jt_write(JsonText *j, const char *bytes, Py_ssize_t length)
{
    if (j->out == NULL) {
        return 0;
    }
    if (jt_room(j, length) < 0) {
        return -1;
    }
    memcpy(j->out + j->used, bytes, (size_t)length);
    j->used += length;
    return 0;
}

/* One character of a text, as `json.dumps` writes it (the text's escapes were checked to be its
 * own: only characters that need none come here). */
static int
jt_character(JsonText *j, Py_UCS4 c)
{
    static const char hex[] = "0123456789abcdef";
    if (j->out == NULL) {
        return 0;
    }
    if (jt_room(j, 12) < 0) {
        return -1;
    }
    char *o = j->out + j->used;
    if (c < 0x7f || (c < 0x80 && !j->ascii)) {
        o[0] = (char)c;
        j->used += 1;
    }
    else if (j->ascii) {
        Py_UCS4 units[2];
        int count = 1;
        units[0] = c;
        if (c >= 0x10000) {
            Py_UCS4 v = c - 0x10000;
            units[0] = 0xd800 | ((v >> 10) & 0x3ff);
            units[1] = 0xdc00 | (v & 0x3ff);
            count = 2;
        }
        for (int u = 0; u < count; u++) {
            o[0] = '\\';
            o[1] = 'u';
            o[2] = hex[(units[u] >> 12) & 0xf];
            o[3] = hex[(units[u] >> 8) & 0xf];
            o[4] = hex[(units[u] >> 4) & 0xf];
            o[5] = hex[units[u] & 0xf];
            o += 6;
        }
        j->used += 6 * count;
    }
    else if (c < 0x800) {
        o[0] = (char)(0xc0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3f));
        j->used += 2;
    }
    else if (c < 0x10000) {
        o[0] = (char)(0xe0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        j->used += 3;
    }
    else {
        o[0] = (char)(0xf0 | (c >> 18));
        o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[3] = (char)(0x80 | (c & 0x3f));
        j->used += 4;
    }
    return 0;
}

/* Whitespace from `at`: where it ends; `*line_break` set when it holds one. A tab or a CR, which
 * JSON takes and the reader leaves to YAML, declines the text. */
static Py_ssize_t
jt_space(JsonText *j, Py_ssize_t at, int *line_break)
{
    if (j->kind == PyUnicode_1BYTE_KIND) {
        /* (an indented text is a third spaces: read without PyUnicode_READ's look at the kind) */
        const unsigned char *s = (const unsigned char *)j->data;
        const Py_ssize_t size = j->size;
        while (at < size) {
            unsigned char c = s[at];
            if (c == ' ') {
                at++;
            }
            else if (c == '\n') {
                *line_break = 1;
                at++;
            }
            else if (c == '\t' || c == '\r') {
                j->declined = 1;
                return -1;
            }
            else {
                break;
            }
        }
        return at;
    }
    while (at < j->size) {
        Py_UCS4 c = JT_READ(j, at);
        if (c == '\n') {
            *line_break = 1;
        }
        else if (c == '\t' || c == '\r') {
            j->declined = 1;
            return -1;
        }
        else if (c != ' ') {
            break;
        }
        at++;
    }
    return at;
}

static int
jt_hex(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') ? (int)(c - '0') : (c >= 'a' && c <= 'f') ? (int)(c - 'a' + 10) : -1;
}

/* The characters of one byte a text holds as they are in every format, and that need no look of
 * their own: ASCII, neither a control character, a quote nor a backslash, nor one of the two
 * brackets `json_bytes` counts. */
static unsigned char PLAIN_ASCII[256];

static void
plain_ascii_init(void)
{
    for (int c = 0x20; c < 0x7f; c++) {
        PLAIN_ASCII[c] = !(c == '"' || c == '\\' || c == '[' || c == '{');
    }
}

/* Whether the backslash at `at` starts what `_layout._ESCAPE_OTHER` finds, `\/` or the escape of
 * half a surrogate pair: the reader's search finds it after any backslash, the second of an
 * escaped backslash too, and declines the text. */
static int
jt_other_escape(JsonText *j, Py_ssize_t at)
{
    if (at + 1 < j->size && JT_READ(j, at + 1) == '/') {
        return 1;
    }
    if (at + 3 >= j->size || JT_READ(j, at + 1) != 'u') {
        return 0;
    }
    Py_UCS4 d = JT_READ(j, at + 2), half = JT_READ(j, at + 3);
    return (d == 'd' || d == 'D') &&
           ((half >= '8' && half <= '9') || (half >= 'a' && half <= 'f') || (half >= 'A' && half <= 'F'));
}

/* The text that starts with the quote at `at`: where it ends, or -1; `*length` its characters. */
static Py_ssize_t
jt_string(JsonText *j, Py_ssize_t at, Py_ssize_t *length)
{
    Py_ssize_t count = 0;
    if (jt_write(j, "\"", 1) < 0) {
        return -1;
    }
    at++;
    while (at < j->size) {
        if (j->kind == PyUnicode_1BYTE_KIND) {
            /* A run of characters written as they are, copied at once: the most of a text (one
             * at a time, through the loop below, cost 27 instructions a character). */
            const unsigned char *s = (const unsigned char *)j->data;
            const Py_ssize_t size = j->size;
            Py_ssize_t run = at;
            while (at < size && PLAIN_ASCII[s[at]]) {
                at++;
            }
            count += at - run;
            if (jt_write(j, (const char *)s + run, at - run) < 0) {
                return -1;
            }
            if (at >= j->size) {
                break;
            }
        }
        Py_UCS4 c = JT_READ(j, at);
        if (c == '"') {
            *length = count;
            return jt_write(j, "\"", 1) < 0 ? -1 : at + 1;
        }
        count++;
        if (c == '[' || c == '{') {
            j->brackets++;
        }
        if (c == '\\') {
            if (at + 1 >= j->size) {
                break;
            }
            Py_UCS4 e = JT_READ(j, at + 1);
            if (e == '\\' && jt_other_escape(j, at + 1)) {
                break; /* (a backslash the reader's search takes for an escape YAML reads otherwise) */
            }
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                char pair[2] = {'\\', (char)e};
                if (jt_write(j, pair, 2) < 0) {
                    return -1;
                }
                at += 2;
                continue;
            }
            /* `\u00XX` is json.dumps's only for a control character without a short escape. */
            if (e != 'u' || at + 5 >= j->size || JT_READ(j, at + 2) != '0' || JT_READ(j, at + 3) != '0') {
                break;
            }
            int high = jt_hex(JT_READ(j, at + 4)), low = jt_hex(JT_READ(j, at + 5));
            if (high < 0 || high > 1 || low < 0) {
                break;
            }
            int code = high * 16 + low;
            if (code == '\b' || code == '\f' || code == '\n' || code == '\r' || code == '\t') {
                break;
            }
            char escape[6] = {'\\', 'u', '0', '0', (char)JT_READ(j, at + 4), (char)JT_READ(j, at + 5)};
            if (jt_write(j, escape, 6) < 0) {
                return -1;
            }
            at += 6;
            continue;
        }
        if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) {
            break; /* (a raw control character: JSON refuses it; a surrogate: UTF-8 has none) */
        }
        if (jt_character(j, c) < 0) {
            return -1;
        }
        at++;
    }
    j->declined = 1;
    return -1;
}

/* The number at `at`, as Python writes it: where it ends, or -1. */
static Py_ssize_t
jt_number(JsonText *j, Py_ssize_t at)
{
    Py_ssize_t start = at;
    if (at < j->size && JT_READ(j, at) == '-') {
        at++;
    }
    Py_ssize_t digits = at;
    if (at < j->size && JT_READ(j, at) == '0') {
        at++;
    }
    else {
        while (at < j->size && JT_READ(j, at) >= '0' && JT_READ(j, at) <= '9') {
            at++;
        }
    }
    if (at == digits || at - digits > MOST_INT_DIGITS) {
        j->declined = 1;
        return -1;
    }
    int fraction = 0;
    if (at + 1 < j->size && JT_READ(j, at) == '.' && JT_READ(j, at + 1) >= '0' && JT_READ(j, at + 1) <= '9') {
        fraction = 1;
        at += 2;
        while (at < j->size && JT_READ(j, at) >= '0' && JT_READ(j, at) <= '9') {
            at++;
        }
    }
    if (at < j->size) {
        Py_UCS4 next = JT_READ(j, at);
        if (next == 'e' || next == 'E' || next == '.' || (next >= '0' && next <= '9')) {
            j->declined = 1; /* an exponent (YAML's reading differs), or what JSON refuses */
            return -1;
        }
    }
    Py_ssize_t length = at - start;
    char small[64];
    char *word = length < (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)length + 1);
    if (word == NULL) {
        PyErr_NoMemory();
        j->failed = 1;
        return -1;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        word[i] = (char)JT_READ(j, start + i);
    }
    word[length] = '\0';
    int same = 1;
    if (!fraction) {
        same = strcmp(word, "-0") != 0; /* (the one integer Python writes otherwise: `0`) */
    }
    else {
        /* A float is written as its repr, which json.dumps writes back (an overflow's `inf`
         * is no number's text). */
        double value = PyOS_string_to_double(word, NULL, NULL);
        char *repr = NULL;
        if (!(value == -1.0 && PyErr_Occurred())) {
            repr = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        }
        if (repr == NULL) {
            if (word != small) {
                PyMem_Free(word);
            }
            j->failed = 1;
            return -1;
        }
        same = strcmp(word, repr) == 0;
        PyMem_Free(repr);
    }
    int failed = same ? jt_write(j, word, length) : 0;
    if (word != small) {
        PyMem_Free(word);
    }
    if (failed < 0) {
        return -1;
    }
    if (!same) {
        j->declined = 1;
        return -1;
    }
    return at;
}

static Py_ssize_t jt_value(JsonText *j, Py_ssize_t at);

/* The key that starts at `at`, in the object whose keys start at `first` of `j->keys`. */
static Py_ssize_t
jt_key(JsonText *j, Py_ssize_t at, Py_ssize_t first)
{
    Py_ssize_t length;
    Py_ssize_t end = jt_string(j, at, &length);
    if (end < 0) {
        return -1;
    }
    if (length >= LONGEST_KEY || j->key_count - first >= 2 * MOST_KEYS) {
        j->declined = 1;
        return -1;
    }
    Py_ssize_t size = end - at;
    for (Py_ssize_t k = first; k < j->key_count; k += 2) {
        Py_ssize_t other = j->keys[k];
        if (j->keys[k + 1] - other != size) {
            continue;
        }
        Py_ssize_t i = 1;
        while (i < size - 1 && JT_READ(j, other + i) == JT_READ(j, at + i)) {
            i++;
        }
        if (i == size - 1) {
            j->declined = 1; /* a key given twice */
            return -1;
        }
    }
    if (j->key_count + 2 > j->key_capacity) {
        Py_ssize_t capacity = j->key_capacity * 2 + 32;
        Py_ssize_t *grown = PyMem_Realloc(j->keys, (size_t)capacity * sizeof(Py_ssize_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            j->failed = 1;
            return -1;
        }
        j->keys = grown;
        j->key_capacity = capacity;
    }
    j->keys[j->key_count++] = at;
    j->keys[j->key_count++] = end;
    return end;
}

/* The object or list that opens at `at`. */
static Py_ssize_t
jt_collection(JsonText *j, Py_ssize_t at)
{
    Py_UCS4 open = JT_READ(j, at);
    char close = open == '{' ? '}' : ']';
    int line_break = 0;
    if (++j->brackets > j->most_brackets || j->depth >= MOST_DEPTH) {
        j->declined = 1;
        return -1;
    }
    char opened = (char)open;
    if (jt_write(j, &opened, 1) < 0) {
        return -1;
    }
    Py_ssize_t first = j->key_count;
    at = jt_space(j, at + 1, &line_break);
    if (at < 0 || at >= j->size) {
        j->declined = 1;
        return -1;
    }
    if (JT_READ(j, at) == (Py_UCS4)close) {
        return jt_write(j, &close, 1) < 0 ? -1 : at + 1;
    }
    if (jt_line(j, j->depth) < 0) {
        return -1;
    }
    for (;;) {
        if (open == '{') {
            if (at >= j->size || JT_READ(j, at) != '"') {
                j->declined = 1;
                return -1;
            }
            at = jt_key(j, at, first);
            if (at < 0) {
                return -1;
            }
            line_break = 0;
            at = jt_space(j, at, &line_break);
            if (at < 0 || at >= j->size || JT_READ(j, at) != ':' || line_break) {
                j->declined = 1; /* (a line break before the colon: YAML takes a key on one line) */
                return -1;
            }
            if (jt_write(j, j->key_separator, j->key_length) < 0) {
                return -1;
            }
            at = jt_space(j, at + 1, &line_break);
            if (at < 0) {
                return -1;
            }
        }
        at = jt_value(j, at);
        if (at < 0) {
            return -1;
        }
        at = jt_space(j, at, &line_break);
        if (at < 0 || at >= j->size) {
            j->declined = 1;
            return -1;
        }
        Py_UCS4 c = JT_READ(j, at);
        if (c == (Py_UCS4)close) {
            j->key_count = first;
            if (jt_line(j, j->depth - 1) < 0 || jt_write(j, &close, 1) < 0) {
                return -1;
            }
            return at + 1;
        }
        if (c != ',') {
            j->declined = 1;
            return -1;
        }
        if (jt_write(j, j->item_separator, j->item_length) < 0 || jt_line(j, j->depth) < 0) {
            return -1;
        }
        at = jt_space(j, at + 1, &line_break);
        if (at < 0) {
            return -1;
        }
    }
}

static Py_ssize_t
jt_word(JsonText *j, Py_ssize_t at, const char *word)
{
    Py_ssize_t length = (Py_ssize_t)strlen(word);
    if (j->size - at < length) {
        j->declined = 1;
        return -1;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        if (JT_READ(j, at + i) != (Py_UCS4)(unsigned char)word[i]) {
            j->declined = 1;
            return -1;
        }
    }
    return jt_write(j, word, length) < 0 ? -1 : at + length;
}

static Py_ssize_t
jt_value(JsonText *j, Py_ssize_t at)
{
    if (at >= j->size) {
        j->declined = 1;
        return -1;
    }
    Py_UCS4 c = JT_READ(j, at);
    if (c == '{' || c == '[') {
        j->depth++;
        Py_ssize_t end = jt_collection(j, at);
        j->depth--;
        return end;
    }
    if (c == '"') {
        Py_ssize_t length;
        return jt_string(j, at, &length);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return jt_number(j, at);
    }
    if (c == 't') {
        return jt_word(j, at, "true");
    }
    if (c == 'f') {
        return jt_word(j, at, "false");
    }
    if (c == 'n') {
        return jt_word(j, at, "null");
    }
    j->declined = 1; /* (NaN and Infinity among them: JSON's spelling, not YAML's) */
    return -1;
}

static int
jt_separator(PyObject *given, const char **bytes, Py_ssize_t *length)
{
    if (!PyUnicode_Check(given) || !PyUnicode_IS_ASCII(given)) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: json_bytes takes separators of ASCII text.");
        return -1;
    }
    *bytes = PyUnicode_AsUTF8AndSize(given, length);
    return *bytes == NULL ? -1 : 0;
}

static PyObject *
json_bytes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "llmcassette: json_bytes takes a text, a start, a count, two "
                                         "separators, a flag and an indentation.");
        return NULL;
    }
    PyObject *text = args[0];
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t most = PyLong_AsSsize_t(args[2]);
    if (most == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int ascii = PyObject_IsTrue(args[5]);
    if (ascii < 0) {
        return NULL;
    }
    Py_ssize_t indent = -1;
    if (args[6] != Py_None) {
        indent = PyLong_AsSsize_t(args[6]);
        if (indent == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (indent < 0 || indent > 64) {
            PyErr_SetString(PyExc_ValueError, "llmcassette: json_bytes takes an indentation of 0 to 64 spaces.");
            return NULL;
        }
    }
    JsonText j;
    memset(&j, 0, sizeof(j));
    j.kind = PyUnicode_KIND(text);
    j.data = PyUnicode_DATA(text);
    j.size = PyUnicode_GET_LENGTH(text);
    j.most_brackets = most;
    j.ascii = ascii;
    j.indent = indent;
    int writing = args[3] != Py_None || args[4] != Py_None;
    if (writing) {
        if (jt_separator(args[3], &j.item_separator, &j.item_length) < 0 ||
            jt_separator(args[4], &j.key_separator, &j.key_length) < 0) {
            return NULL;
        }
        j.capacity = (start >= 0 && start < j.size ? j.size - start : 0) + 64;
        j.out = PyMem_Malloc((size_t)j.capacity);
        if (j.out == NULL) {
            return PyErr_NoMemory();
        }
    }
    Py_ssize_t end = -1;
    if (start >= 0 && start < j.size) {
        end = jt_value(&j, start);
    }
    PyObject *result = NULL;
    if (j.failed) {
        /* (an exception is set) */
    }
    else if (end < 0 || end >= j.size || JT_READ(&j, end) != '\n' || j.brackets > most) {
        /* declined: not JSON read here, not followed by a line break, or of more brackets (those
         * in its texts too) than asked */
        result = Py_NewRef(Py_None);
    }
    else {
        PyObject *written = writing ? PyBytes_FromStringAndSize(j.out, j.used) : Py_NewRef(Py_None);
        if (written != NULL) {
            result = Py_BuildValue("(Nnn)", written, end, j.brackets);
        }
    }
    PyMem_Free(j.out);
    PyMem_Free(j.keys);
    return result;
}

/*
 * copy_built(value) -> a copy: `value`'s dicts, lists and tuples made afresh, each one met again
 * (by identity) copied once, so the copy shares among its own collections what `value` shares;
 * texts, numbers, bytes, booleans and None, which nothing changes, are the same objects. What
 * `marshal.loads(marshal.dumps(value))` gives (`_layout._built`, which the reader uses without
 * the extension), without making each text again and interning it: what a kept run of lines
 * builds (`_layout._runs`), copied for every item that has those lines (11k -> 3k instructions
 * for an answer's status and headers). A value of any other type is a TypeError: the caller
 * keeps the run as marshal's bytes instead.
 */
#define COPY_DEPTH 200

typedef struct {
    PyObject **from; /* (borrowed: the value copied holds them) */
    PyObject **to;   /* (borrowed: the copy holds them) */
    Py_ssize_t count, capacity;
} CopyMemo;

static PyObject *
copy_value(PyObject *value, CopyMemo *memo, int depth)
{
    if (value == Py_None || value == Py_True || value == Py_False || PyUnicode_CheckExact(value) ||
        PyLong_CheckExact(value) || PyFloat_CheckExact(value) || PyBytes_CheckExact(value)) {
        return Py_NewRef(value);
    }
    int is_dict = PyDict_CheckExact(value), is_list = PyList_CheckExact(value);
    if (!is_dict && !is_list && !PyTuple_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "llmcassette: copy_built does not copy a %.100s.", Py_TYPE(value)->tp_name);
        return NULL;
    }
    if (depth > COPY_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "llmcassette: copy_built was given a value nested too deep.");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < memo->count; i++) {
        if (memo->from[i] == value) {
            return Py_NewRef(memo->to[i]);
        }
    }
    Py_ssize_t size = is_dict ? PyDict_GET_SIZE(value) : Py_SIZE(value);
    PyObject *copy = is_dict ? PyDict_New() : is_list ? PyList_New(size) : PyTuple_New(size);
    if (copy == NULL) {
        return NULL;
    }
    if (memo->count == memo->capacity) {
        Py_ssize_t capacity = memo->capacity * 2 + 16;
        PyObject **from = PyMem_Realloc(memo->from, (size_t)capacity * sizeof(PyObject *));
        if (from == NULL) {
            Py_DECREF(copy);
            PyErr_NoMemory();
            return NULL;
        }
        memo->from = from;
        PyObject **to = PyMem_Realloc(memo->to, (size_t)capacity * sizeof(PyObject *));
        if (to == NULL) {
            Py_DECREF(copy);
            PyErr_NoMemory();
            return NULL;
        }
        memo->to = to;
        memo->capacity = capacity;
    }
    memo->from[memo->count] = value;
    memo->to[memo->count] = copy;
    memo->count++;
    if (is_dict) {
        Py_ssize_t position = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            PyObject *made = copy_value(item, memo, depth + 1);
            if (made == NULL || PyDict_SetItem(copy, key, made) < 0) {
                Py_XDECREF(made);
                Py_DECREF(copy);
                return NULL;
            }
            Py_DECREF(made);
        }
        return copy;
    }
    /* (a list or tuple made at its size: an item not set yet is NULL, which freeing it skips) */
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = is_list ? PyList_GET_ITEM(value, i) : PyTuple_GET_ITEM(value, i);
        PyObject *made = copy_value(item, memo, depth + 1);
        if (made == NULL) {
            Py_DECREF(copy);
            return NULL;
        }
        if (is_list) {
            PyList_SET_ITEM(copy, i, made);
        }
        else {
            PyTuple_SET_ITEM(copy, i, made);
        }
    }
    return copy;
}

static PyObject *
copy_built(PyObject *module, PyObject *value)
{
    CopyMemo memo = {NULL, NULL, 0, 0};
    PyObject *copy = copy_value(value, &memo, 0);
    PyMem_Free(memo.from);
    PyMem_Free(memo.to);
    return copy;
}

static PyMethodDef methods[] = {
    {"literal_block", literal_block, METH_VARARGS, "A literal block's dedented text and where it ends."},
    {"block_bytes", block_bytes, METH_VARARGS, "literal_block of a UTF-8 text's bytes."},
    {"ascii", ascii, METH_O, "Whether bytes are ASCII (bytes.isascii)."},
    {"plain_times", plain_times, METH_O, "Whether a flow list of times is plain (_plain._PLAIN_TIMES)."},
    {"lengths_format", lengths_format, METH_O, "The struct format of a flow list of chunk lengths, or None."},
    {"first_column", first_column, METH_VARARGS, "Where lines that start at the first column with text start."},
    {"cut", cut, METH_VARARGS, "A body cut into the chunks a lengths format gives, or None."},
    {"plain_characters", plain_characters, METH_O, "Whether a text holds no character YAML refuses raw."},
    {"adler32", adler32, METH_O, "zlib.adler32 of a bytes-like object, in fewer instructions."},
    {"json_object", (PyCFunction)(void (*)(void))json_object, METH_FASTCALL, "The JSON decoder's hook: an object, or declined."},
    {"copy_built", copy_built, METH_O, "A value's dicts, lists and tuples made afresh (marshal's round trip)."},
    {"json_bytes", (PyCFunction)(void (*)(void))json_bytes, METH_FASTCALL, "A JSON value's end and bracket count, and its bytes in a format, or declined."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "llmcassette._speedups",
    .m_doc = "The cold reader's passes over a stream's bytes, in C (see llmcassette/_compiled.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    plain_ascii_init();
    return PyModuleDef_Init(&module_def);
}
