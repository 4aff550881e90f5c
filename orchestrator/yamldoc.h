/* A YAML file as a small tree whose every node knows its file:line:column, and a key map
 * (declared once per mapping) that reads and checks a mapping's values. */
#ifndef OMO_YAMLDOC_H
#define OMO_YAMLDOC_H

#include "util.h"

typedef enum omo_ykind { OMO_Y_SCALAR = 0, OMO_Y_SEQ, OMO_Y_MAP } omo_ykind;

typedef struct omo_ynode omo_ynode;
struct omo_ynode {
    omo_ykind kind;
    omo_loc loc;
    char *str;        /* scalars: the text, NUL-terminated */
    bool plain;       /* scalars: unquoted, so `true`, `12` and `~` keep their YAML meaning */
    omo_ynode **kids; /* sequences: the items; mappings: key, value, key, value, ... */
    size_t nkids;
};

/* A parsed document. Owns every node; nodes may be shared when the file uses aliases. */
typedef struct omo_ydoc omo_ydoc;

/* Parses one YAML document from buf. `file` names it in locations and must outlive the
 * document. On a syntax error returns NULL after adding one `FILE:LINE:COL: error:` line to
 * diag. Duplicate keys are reported to diag too, but the document is still returned (the first
 * value wins) so that the caller can go on reporting the file's other errors. */
omo_ydoc *omo_ydoc_parse(const char *file, const char *buf, size_t len, omo_diag *diag);
void omo_ydoc_destroy(omo_ydoc *doc);
/* The top node, or NULL for an empty document. Owned by doc. */
const omo_ynode *omo_ydoc_root(const omo_ydoc *doc);

/* Reads a whole file into a NUL-terminated heap buffer the caller frees. On failure adds
 * `PATH: error: ...` to diag and returns false. */
OMO_MUST_CHECK bool omo_yaml_read_file(const char *path, char **buf, size_t *len, omo_diag *diag);

/* Puts the lines diag gained since `start` in file order, by the line and column that follow
 * `file:`; lines without them keep their order after the others. */
void omo_yaml_diag_sort(omo_diag *diag, size_t start, const char *file);

/* True for a plain `~`, `null`, `Null`, `NULL` or empty scalar. */
bool omo_ynode_is_null(const omo_ynode *node);
/* Number of key/value pairs of a mapping. */
static inline size_t omo_ymap_len(const omo_ynode *map)
{
    return map->nkids / 2;
}
static inline const omo_ynode *omo_ymap_key(const omo_ynode *map, size_t i)
{
    return map->kids[2 * i];
}
static inline const omo_ynode *omo_ymap_value(const omo_ynode *map, size_t i)
{
    return map->kids[2 * i + 1];
}
/* The value for key in map, or NULL. */
const omo_ynode *omo_ymap_get(const omo_ynode *map, const char *key);

/* What a key's value must be. */
typedef enum omo_ytype {
    OMO_YT_ANY = 0, /* any node, read by the caller */
    OMO_YT_STR,     /* a non-null scalar */
    OMO_YT_BOOL,    /* true | false */
    OMO_YT_INT,     /* a decimal integer */
    OMO_YT_NUMBER,  /* a decimal number, as a double */
    OMO_YT_MONEY,   /* a decimal number, in fixed point with OMO_MICRO */
    OMO_YT_HOURS,   /* a decimal number, in fixed point with OMO_MILLI */
    OMO_YT_LIST,    /* a sequence */
    OMO_YT_MAP      /* a mapping */
} omo_ytype;

#define OMO_YK_REQUIRED 1u /* missing key: an error at the mapping */
#define OMO_YK_MIN      2u /* numbers: value >= min */
#define OMO_YK_MAX      4u /* numbers: value <= max */

/* One accepted key of a mapping. Ranges are in the value's own units (4.5 means 4.5 money). */
typedef struct omo_ykey {
    const char *name;
    omo_ytype type;
    unsigned flags;
    double min, max;
} omo_ykey;

/* A key's value once read: node is NULL when the key is absent or its value was refused. */
typedef struct omo_yval {
    const omo_ynode *node;
    const char *str; /* scalars: node->str */
    int64_t i;       /* INT, MONEY, HOURS */
    double d;        /* NUMBER */
    bool b;          /* BOOL */
} omo_yval;

/* Reads mapping `map` against the nkeys keys: vals[i] receives key i. Reports, each at its
 * node, a non-mapping, unknown keys (with the list of valid ones), missing required keys,
 * values of the wrong type and values out of range. Returns the number of errors added. */
int omo_ymap_read(const omo_ynode *map, const char *what, const omo_ykey *keys, size_t nkeys,
                  omo_yval *vals, omo_diag *diag);

/* Checks that node is a non-null scalar; otherwise reports "expected a string for WHAT". */
OMO_MUST_CHECK bool omo_ynode_str(const omo_ynode *node, const char *what, omo_diag *diag);
/* Checks that node is a sequence; otherwise reports "expected a list for WHAT". */
OMO_MUST_CHECK bool omo_ynode_list(const omo_ynode *node, const char *what, omo_diag *diag);
/* Index of the scalar node's text among names, or -1 after reporting
 * "unknown WHAT 'X' (valid: a, b)" (or a type error) at node. */
int omo_ynode_enum(const omo_ynode *node, const char *what, const char *const *names, size_t nnames,
                   omo_diag *diag);

#endif
