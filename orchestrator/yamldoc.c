/* YAML documents as located trees (libyaml's event API), and the key map that reads them. */
#include "yamldoc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

/* Aliases share nodes, so a small file can stand for a huge tree ("billion laughs"); walks over
 * the tree must stay bounded. */
#define YDOC_MAX_WEIGHT 10000000u

/* A node and what only the loader needs; `node` comes first so the two convert freely. */
typedef struct ybox {
    omo_ynode node;
    bool open;       /* a container whose end has not been seen yet */
    uint64_t weight; /* nodes in the subtree, aliases expanded */
    size_t cap;
} ybox;

typedef struct anchor {
    char *name;
    ybox *box;
} anchor;

struct omo_ydoc {
    const char *file;
    omo_ynode *root;
    ybox **boxes; /* every node, for destroy */
    size_t nboxes, capboxes;
};

static omo_loc mark_loc(const omo_ydoc *doc, yaml_mark_t mark)
{
    omo_loc loc = {doc->file, (int)mark.line + 1, (int)mark.column + 1};
    return loc;
}

static ybox *box_new(omo_ydoc *doc, omo_ykind kind, yaml_mark_t mark)
{
    ybox *box = omo_xcalloc(1, sizeof *box);
    box->node.kind = kind;
    box->node.loc = mark_loc(doc, mark);
    box->weight = 1;
    omo_grow((void **)&doc->boxes, &doc->capboxes, doc->nboxes + 1, sizeof *doc->boxes);
    doc->boxes[doc->nboxes++] = box;
    return box;
}

static void box_push(ybox *parent, ybox *kid)
{
    omo_grow((void **)&parent->node.kids, &parent->cap, parent->node.nkids + 1,
             sizeof *parent->node.kids);
    parent->node.kids[parent->node.nkids++] = &kid->node;
}

/* Keys must be scalars and unique: the first of duplicated keys stays, later ones are reported
 * and dropped with their values, so the rest of the file can still be checked. */
static void map_finish(ybox *box, omo_diag *diag)
{
    omo_ynode *map = &box->node;
    size_t kept = 0;
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        omo_ynode *key = map->kids[i];
        bool keep = true;
        if (key->kind != OMO_Y_SCALAR) {
            omo_diag_error(diag, &key->loc, "mapping keys must be scalars");
            keep = false;
        } else {
            for (size_t j = 0; j < kept; j += 2) {
                if (!strcmp(map->kids[j]->str, key->str)) {
                    omo_diag_error(diag, &key->loc, "duplicate key '%s' (first at line %d)",
                                   key->str, map->kids[j]->loc.line);
                    keep = false;
                    break;
                }
            }
        }
        if (keep) {
            map->kids[kept] = map->kids[i];
            map->kids[kept + 1] = map->kids[i + 1];
            kept += 2;
        }
    }
    map->nkids = kept;
}

/* libyaml marks reader errors (bad UTF-8, control characters) by byte offset only. */
static omo_loc offset_loc(const char *file, const char *buf, size_t len, size_t offset)
{
    omo_loc loc = {file, 1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            loc.line++;
            loc.col = 1;
        } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
            loc.col++;
        }
    }
    return loc;
}

static void syntax_error(const omo_ydoc *doc, const yaml_parser_t *parser, const char *buf,
                         size_t len, omo_diag *diag)
{
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    omo_loc loc;
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        loc = (omo_loc){doc->file, 1, 1};
        problem = "out of memory";
        break;
    case YAML_READER_ERROR:
        loc = offset_loc(doc->file, buf, len, parser->problem_offset);
        break;
    default:
        loc = mark_loc(doc, parser->problem_mark);
        break;
    }
    if (parser->context && parser->error != YAML_READER_ERROR)
        omo_diag_error(diag, &loc, "%s (%s at line %d, column %d)", problem, parser->context,
                       (int)parser->context_mark.line + 1, (int)parser->context_mark.column + 1);
    else
        omo_diag_error(diag, &loc, "%s", problem);
}

omo_ydoc *omo_ydoc_parse(const char *file, const char *buf, size_t len, omo_diag *diag)
{
    omo_ydoc *doc = omo_xcalloc(1, sizeof *doc);
    doc->file = file;
    yaml_parser_t parser;
    bool parser_ready = false;
    yaml_event_t ev;
    bool have_event = false;
    ybox **stack = NULL;
    size_t depth = 0, capstack = 0;
    anchor *anchors = NULL;
    size_t nanchors = 0, capanchors = 0;
    int ndocs = 0;

    if (!yaml_parser_initialize(&parser)) {
        omo_loc loc = {file, 1, 1};
        omo_diag_error(diag, &loc, "out of memory");
        goto fail;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(doc, &parser, buf, len, diag);
            goto fail;
        }
        have_event = true;
        ybox *box = NULL;
        const yaml_char_t *anchor_name = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                omo_loc loc = mark_loc(doc, ev.start_mark);
                omo_diag_error(diag, &loc, "only one YAML document is allowed per file");
                goto fail;
            }
            break;
        case YAML_SCALAR_EVENT:
            box = box_new(doc, OMO_Y_SCALAR, ev.start_mark);
            box->node.str = omo_xmalloc(ev.data.scalar.length + 1);
            memcpy(box->node.str, ev.data.scalar.value, ev.data.scalar.length);
            box->node.str[ev.data.scalar.length] = '\0';
            box->node.plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            anchor_name = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            box = box_new(doc, OMO_Y_SEQ, ev.start_mark);
            anchor_name = ev.data.sequence_start.anchor;
            break;
        case YAML_MAPPING_START_EVENT:
            box = box_new(doc, OMO_Y_MAP, ev.start_mark);
            anchor_name = ev.data.mapping_start.anchor;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            ybox *top = stack[--depth];
            top->open = false;
            if (top->node.kind == OMO_Y_MAP)
                map_finish(top, diag);
            for (size_t i = 0; i < top->node.nkids; i++) {
                top->weight += ((ybox *)top->node.kids[i])->weight;
                if (top->weight > YDOC_MAX_WEIGHT) {
                    omo_diag_error(diag, &top->node.loc,
                                   "document too large: more than %u nodes once aliases are "
                                   "expanded",
                                   YDOC_MAX_WEIGHT);
                    goto fail;
                }
            }
            break;
        }
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            omo_loc loc = mark_loc(doc, ev.start_mark);
            for (size_t i = nanchors; i-- > 0;) {
                if (!strcmp(anchors[i].name, name)) {
                    box = anchors[i].box;
                    break;
                }
            }
            if (!box) {
                omo_diag_error(diag, &loc, "unknown alias '*%s'", name);
                goto fail;
            }
            if (box->open) {
                omo_diag_error(diag, &loc, "alias '*%s' refers to a node that contains it", name);
                goto fail;
            }
            break;
        }
        default:
            break;
        }

        if (box) {
            if (anchor_name) {
                omo_grow((void **)&anchors, &capanchors, nanchors + 1, sizeof *anchors);
                anchors[nanchors].name = omo_xstrdup((const char *)anchor_name);
                anchors[nanchors++].box = box;
            }
            if (depth == 0)
                doc->root = &box->node;
            else
                box_push(stack[depth - 1], box);
            if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
                box->open = true;
                omo_grow((void **)&stack, &capstack, depth + 1, sizeof *stack);
                stack[depth++] = box;
            }
        }
        yaml_event_delete(&ev);
        have_event = false;
    }

    for (size_t i = 0; i < nanchors; i++)
        free(anchors[i].name);
    free(anchors);
    free(stack);
    yaml_parser_delete(&parser);
    return doc;

fail:
    if (have_event)
        yaml_event_delete(&ev);
    for (size_t i = 0; i < nanchors; i++)
        free(anchors[i].name);
    free(anchors);
    free(stack);
    if (parser_ready)
        yaml_parser_delete(&parser);
    omo_ydoc_destroy(doc);
    return NULL;
}

void omo_ydoc_destroy(omo_ydoc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nboxes; i++) {
        free(doc->boxes[i]->node.str);
        free(doc->boxes[i]->node.kids);
        free(doc->boxes[i]);
    }
    free(doc->boxes);
    free(doc);
}

const omo_ynode *omo_ydoc_root(const omo_ydoc *doc)
{
    return doc->root;
}

bool omo_yaml_read_file(const char *path, char **buf, size_t *len, omo_diag *diag)
{
    char line[512];
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t used = 0, cap = 0;
    if (!f)
        goto fail;
    for (;;) {
        omo_grow((void **)&data, &cap, used + 65536, 1);
        size_t got = fread(data + used, 1, cap - used - 1, f);
        used += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    data[used] = '\0';
    *buf = data;
    *len = used;
    return true;

fail:
    snprintf(line, sizeof line, "%s: error: cannot read: %s", path, strerror(errno));
    omo_diag_add(diag, line);
    if (f)
        fclose(f);
    free(data);
    return false;
}

typedef struct diag_line {
    long line, col;
    size_t order;
    char *text;
} diag_line;

static int diag_line_cmp(const void *a, const void *b)
{
    const diag_line *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

void omo_yaml_diag_sort(omo_diag *diag, size_t start, const char *file)
{
    if (diag->count <= start + 1)
        return;
    size_t n = diag->count - start, flen = strlen(file);
    diag_line *lines = omo_xcalloc(n, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        char *text = diag->lines[start + i], *end;
        lines[i] = (diag_line){LONG_MAX, LONG_MAX, i, text};
        if (strncmp(text, file, flen) || text[flen] != ':')
            continue;
        long line = strtol(text + flen + 1, &end, 10);
        if (*end != ':')
            continue;
        long col = strtol(end + 1, &end, 10);
        if (*end != ':')
            continue;
        lines[i].line = line;
        lines[i].col = col;
    }
    qsort(lines, n, sizeof *lines, diag_line_cmp);
    for (size_t i = 0; i < n; i++)
        diag->lines[start + i] = lines[i].text;
    free(lines);
}

bool omo_ynode_is_null(const omo_ynode *node)
{
    if (node->kind != OMO_Y_SCALAR || !node->plain)
        return false;
    const char *s = node->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const omo_ynode *omo_ymap_get(const omo_ynode *map, const char *key)
{
    if (!map || map->kind != OMO_Y_MAP)
        return NULL;
    for (size_t i = 0; i < omo_ymap_len(map); i++) {
        if (!strcmp(omo_ymap_key(map, i)->str, key))
            return omo_ymap_value(map, i);
    }
    return NULL;
}

/* "'abc'", "a list", ... for "expected X, got Y" messages. */
static const char *describe(const omo_ynode *node, char *buf, size_t len)
{
    if (node->kind == OMO_Y_SEQ)
        return "a list";
    if (node->kind == OMO_Y_MAP)
        return "a mapping";
    if (omo_ynode_is_null(node))
        return "nothing";
    size_t n = strlen(node->str);
    if (n > 40)
        snprintf(buf, len, "'%.37s...'", node->str);
    else
        snprintf(buf, len, "'%s'", node->str);
    return buf;
}

static bool is_integer(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* Plain decimal notation only: YAML 1.1 oddities (0x1F, 1_000, .inf) are refused. */
static bool is_decimal(const char *s)
{
    size_t digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    }
    return digits > 0 && !*s;
}

static bool read_value(const omo_ynode *v, const omo_ykey *key, omo_yval *out, omo_diag *diag)
{
    char got[64];
    bool scalar = v->kind == OMO_Y_SCALAR && !omo_ynode_is_null(v);
    bool plain = scalar && v->plain;
    const char *s = scalar ? v->str : "";
    double num = 0;

    switch (key->type) {
    case OMO_YT_ANY:
        break;
    case OMO_YT_STR:
        if (!scalar) {
            omo_diag_error(diag, &v->loc, "expected a string for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        out->str = s;
        break;
    case OMO_YT_BOOL:
        if (plain && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
            out->b = true;
        } else if (plain && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
            out->b = false;
        } else {
            omo_diag_error(diag, &v->loc, "expected true or false for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        break;
    case OMO_YT_INT: {
        if (!plain || !is_integer(s)) {
            omo_diag_error(diag, &v->loc, "expected an integer for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        errno = 0;
        long long i = strtoll(s, NULL, 10);
        if (errno == ERANGE) {
            omo_diag_error(diag, &v->loc, "%s is out of range", key->name);
            return false;
        }
        out->i = i;
        num = (double)i;
        break;
    }
    case OMO_YT_NUMBER:
    case OMO_YT_MONEY:
    case OMO_YT_HOURS:
        if (!plain || !is_decimal(s)) {
            omo_diag_error(diag, &v->loc, "expected a number for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        if (key->type == OMO_YT_NUMBER) {
            num = out->d = strtod(s, NULL);
            if (!isfinite(num)) {
                omo_diag_error(diag, &v->loc, "%s is out of range", key->name);
                return false;
            }
        } else {
            int64_t scale = key->type == OMO_YT_MONEY ? OMO_MICRO : OMO_MILLI;
            if (!omo_fixed_parse(s, scale, &out->i)) {
                omo_diag_error(diag, &v->loc, "%s is out of range", key->name);
                return false;
            }
            num = (double)out->i / (double)scale;
        }
        break;
    case OMO_YT_LIST:
        if (v->kind != OMO_Y_SEQ) {
            omo_diag_error(diag, &v->loc, "expected a list for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        break;
    case OMO_YT_MAP:
        if (v->kind != OMO_Y_MAP) {
            omo_diag_error(diag, &v->loc, "expected a mapping for '%s', got %s", key->name,
                           describe(v, got, sizeof got));
            return false;
        }
        break;
    }

    bool lo = (key->flags & OMO_YK_MIN) && num < key->min;
    bool hi = (key->flags & OMO_YK_MAX) && num > key->max;
    if (lo || hi) {
        /* a bound of 0 below reads best as "not negative" (money, quantities) */
        if ((key->flags & OMO_YK_MIN) && (key->flags & OMO_YK_MAX) && key->min != 0)
            omo_diag_error(diag, &v->loc, "%s must be between %.15g and %.15g", key->name, key->min,
                           key->max);
        else if (lo && key->min == 0)
            omo_diag_error(diag, &v->loc, "%s must not be negative", key->name);
        else if (lo)
            omo_diag_error(diag, &v->loc, "%s must be at least %.15g", key->name, key->min);
        else
            omo_diag_error(diag, &v->loc, "%s must be at most %.15g", key->name, key->max);
        return false;
    }
    out->node = v;
    return true;
}

int omo_ymap_read(const omo_ynode *map, const char *what, const omo_ykey *keys, size_t nkeys,
                  omo_yval *vals, omo_diag *diag)
{
    int errors = 0;
    char got[64];
    memset(vals, 0, nkeys * sizeof *vals);
    if (map->kind != OMO_Y_MAP) {
        omo_diag_error(diag, &map->loc, "expected a mapping for %s, got %s", what,
                       describe(map, got, sizeof got));
        return 1;
    }

    bool *present = omo_xcalloc(nkeys ? nkeys : 1, sizeof *present);
    for (size_t i = 0; i < omo_ymap_len(map); i++) {
        const omo_ynode *k = omo_ymap_key(map, i);
        size_t j = 0;
        while (j < nkeys && strcmp(keys[j].name, k->str))
            j++;
        if (j == nkeys) {
            char valid[512];
            size_t used = 0;
            valid[0] = '\0';
            for (size_t m = 0; m < nkeys && used < sizeof valid; m++)
                used += (size_t)snprintf(valid + used, sizeof valid - used, "%s%s", m ? ", " : "",
                                         keys[m].name);
            omo_diag_error(diag, &k->loc, "unknown key '%s' (valid keys: %s)", k->str, valid);
            errors++;
            continue;
        }
        present[j] = true;
        if (!read_value(omo_ymap_value(map, i), &keys[j], &vals[j], diag))
            errors++;
    }
    for (size_t j = 0; j < nkeys; j++) {
        if ((keys[j].flags & OMO_YK_REQUIRED) && !present[j]) {
            omo_diag_error(diag, &map->loc, "missing required key '%s'", keys[j].name);
            errors++;
        }
    }
    free(present);
    return errors;
}

bool omo_ynode_str(const omo_ynode *node, const char *what, omo_diag *diag)
{
    char got[64];
    if (node->kind == OMO_Y_SCALAR && !omo_ynode_is_null(node))
        return true;
    omo_diag_error(diag, &node->loc, "expected a string for %s, got %s", what,
                   describe(node, got, sizeof got));
    return false;
}

bool omo_ynode_list(const omo_ynode *node, const char *what, omo_diag *diag)
{
    char got[64];
    if (node->kind == OMO_Y_SEQ)
        return true;
    omo_diag_error(diag, &node->loc, "expected a list for %s, got %s", what,
                   describe(node, got, sizeof got));
    return false;
}

int omo_ynode_enum(const omo_ynode *node, const char *what, const char *const *names, size_t nnames,
                   omo_diag *diag)
{
    if (!omo_ynode_str(node, what, diag))
        return -1;
    for (size_t i = 0; i < nnames; i++) {
        if (!strcmp(node->str, names[i]))
            return (int)i;
    }
    char valid[256];
    size_t used = 0;
    valid[0] = '\0';
    for (size_t i = 0; i < nnames && used < sizeof valid; i++)
        used +=
            (size_t)snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", names[i]);
    omo_diag_error(diag, &node->loc, "unknown %s '%s' (valid: %s)", what, node->str, valid);
    return -1;
}
