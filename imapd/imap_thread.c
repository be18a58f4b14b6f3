/*
 * imap_thread - RFC 5256 threading. See imap_thread.h.
 *
 * REFERENCES builds a forest of containers (a message, or a dummy for an
 * id only referenced), linked parent / first child / next sibling, with
 * the ids in an open-addressing hash table; all containers come from one
 * array sized before the work starts, so nothing is freed one by one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "imap_thread.h"

/* a container */
struct imap_thread_node {
	const struct imap_sort_msg *msg;	/* NULL: a dummy */
	struct imap_thread_node *parent;
	struct imap_thread_node *child;		/* first child */
	struct imap_thread_node *next;		/* next sibling */
	struct imap_thread_node *prev;		/* previous sibling (kept
						   up to date by link and
						   unlink only: step 1) */
	int depth;				/* -1: not known yet */
};

/* the forest and its id table */
struct imap_thread_ctx {
	struct imap_thread_node *nodes;
	size_t nnodes, cap;
	struct imap_thread_node root;		/* children: root set */
	struct {
		const char *id;
		size_t len;
		struct imap_thread_node *node;
	} *tab;
	size_t tabsize;				/* a power of two */
	bool uid;
};

/* imap_thread_parse - the algorithm, the charset, the search keys */
int
imap_thread_parse(struct imap_cursor *c, struct imap_thread_program *tp,
    const char **why)
{
	struct imap_token t;
	struct buf cs = BUF_INIT;

	memset(tp, 0, sizeof(*tp));
	if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM) {
		*why = "THREAD needs an algorithm";
		return -1;
	}
	if (imap_tok_is(&t, "REFERENCES")) {
		tp->alg = IMAP_THREAD_REFERENCES;
	} else if (imap_tok_is(&t, "ORDEREDSUBJECT")) {
		tp->alg = IMAP_THREAD_ORDEREDSUBJECT;
	} else {
		*why = "Unknown threading algorithm";
		return -1;
	}
	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    !imap_tok_astring(&t)) {
		*why = "THREAD needs a charset";
		return -1;
	}
	imap_tok_string(&t, &cs);
	if (imap_search_parse(c, &tp->search, why) < 0) {
		buf_free(&cs);
		return -1;
	}
	if (tp->search.esearch || tp->search.charset != NULL) {
		*why = "Invalid search program";
		buf_free(&cs);
		imap_thread_free(tp);
		return -1;
	}
	tp->search.charset = buf_steal(&cs);
	return 0;
}

/* imap_thread_free - release a THREAD program */
void
imap_thread_free(struct imap_thread_program *tp)
{
	imap_search_free(&tp->search);
	memset(tp, 0, sizeof(*tp));
}

/* imap_thread_new - a container from the array */
static struct imap_thread_node *
imap_thread_new(struct imap_thread_ctx *x, const struct imap_sort_msg *m)
{
	struct imap_thread_node *n;

	if (x->nnodes == x->cap)
		return NULL;	/* sized beforehand: cannot happen */
	n = &x->nodes[x->nnodes++];
	memset(n, 0, sizeof(*n));
	n->msg = m;
	n->depth = -1;
	return n;
}

/* imap_thread_hash - FNV-1a of an id */
static size_t
imap_thread_hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return (size_t)h;
}

/* imap_thread_slot - the table slot of id (empty if it is not there) */
static size_t
imap_thread_slot(const struct imap_thread_ctx *x, const char *id, size_t n)
{
	size_t i = imap_thread_hash(id, n) & (x->tabsize - 1);

	while (x->tab[i].id != NULL && (x->tab[i].len != n ||
	    memcmp(x->tab[i].id, id, n) != 0))
		i = (i + 1) & (x->tabsize - 1);
	return i;
}

/* imap_thread_unlink - take n from its parent's children (in constant
 * time: a parent may have many thousands) */
static void
imap_thread_unlink(struct imap_thread_node *n)
{
	if (n->parent == NULL)
		return;
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		n->parent->child = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	n->parent = NULL;
	n->next = NULL;
	n->prev = NULL;
}

/* imap_thread_link - make c a child of p unless that makes a loop or
 * puts c IMAP_THREAD_DEPTH_MAX deep (the walk up from p is what finds
 * loops; bounding it keeps a long References chain from costing time
 * quadratic in its length) */
static void
imap_thread_link(struct imap_thread_node *p, struct imap_thread_node *c)
{
	int steps = 0;

	for (struct imap_thread_node *a = p; a != NULL; a = a->parent)
		if (a == c || ++steps >= IMAP_THREAD_DEPTH_MAX)
			return;
	imap_thread_unlink(c);
	c->parent = p;
	c->prev = NULL;
	c->next = p->child;
	if (p->child != NULL)
		p->child->prev = c;
	p->child = c;
}

/* imap_thread_id - the container of id (a new dummy when unknown) */
static struct imap_thread_node *
imap_thread_id(struct imap_thread_ctx *x, const char *id, size_t n)
{
	size_t i = imap_thread_slot(x, id, n);

	if (x->tab[i].id == NULL) {
		x->tab[i].id = id;
		x->tab[i].len = n;
		x->tab[i].node = imap_thread_new(x, NULL);
	}
	return x->tab[i].node;
}

/* imap_thread_key - a container's sent date and sequence number: a
 * dummy's are those of its first child */
static const struct imap_sort_msg *
imap_thread_key(const struct imap_thread_node *n)
{
	while (n->msg == NULL && n->child != NULL)
		n = n->child;
	return n->msg;
}

/* imap_thread_cmp - by sent date, then sequence number */
static int
imap_thread_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_msg *a = imap_thread_key(
	    *(struct imap_thread_node *const *)pa);
	const struct imap_sort_msg *b = imap_thread_key(
	    *(struct imap_thread_node *const *)pb);

	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* imap_thread_sort - sort every set of siblings below n by date */
static void
imap_thread_sort(struct imap_thread_node *n, struct imap_thread_node **tmp)
{
	struct imap_thread_node *c, **tail;
	size_t k = 0;

	for (c = n->child; c != NULL; c = c->next)
		imap_thread_sort(c, tmp);
	for (c = n->child; c != NULL; c = c->next)
		tmp[k++] = c;
	if (k < 2)
		return;
	qsort(tmp, k, sizeof(*tmp), imap_thread_cmp);
	tail = &n->child;
	for (size_t i = 0; i < k; i++) {
		*tail = tmp[i];
		tail = &tmp[i]->next;
	}
	*tail = NULL;
}

/* imap_thread_prune - step 3: drop empty dummies, promote the children
 * of the others (to the root set only when there is one child) */
static void
imap_thread_prune(struct imap_thread_ctx *x, struct imap_thread_node *n)
{
	struct imap_thread_node **pp = &n->child, *c, *g, *last;

	while ((c = *pp) != NULL) {
		imap_thread_prune(x, c);
		if (c->msg != NULL) {
			pp = &c->next;
			continue;
		}
		if (c->child == NULL) {
			*pp = c->next;
			continue;
		}
		if (n == &x->root && c->child->next != NULL) {
			pp = &c->next;
			continue;
		}
		/* splice c's children in c's place */
		for (g = c->child, last = NULL; g != NULL; g = g->next) {
			g->parent = n == &x->root ? NULL : n;
			last = g;
		}
		last->next = c->next;
		*pp = c->child;
		/* they are pruned already: step over them */
		pp = &last->next;
	}
}

/* imap_thread_subject - the base subject a root is grouped by */
static const char *
imap_thread_subject(const struct imap_thread_node *n)
{
	const struct imap_sort_msg *m = n->msg ? n->msg :
	    n->child ? n->child->msg : NULL;

	return m != NULL && m->subject != NULL ? m->subject : "";
}

/* imap_thread_group - step 5: join roots with the same base subject */
static void
imap_thread_group(struct imap_thread_ctx *x)
{
	struct imap_thread_node *r, *e, *d, *k, **pp;
	size_t i;

	memset(x->tab, 0, x->tabsize * sizeof(*x->tab));
	for (r = x->root.child; r != NULL; r = r->next) {
		const char *s = imap_thread_subject(r);

		if (*s == '\0')
			continue;
		i = imap_thread_slot(x, s, strlen(s));
		e = x->tab[i].node;
		if (e == NULL) {
			x->tab[i].id = s;
			x->tab[i].len = strlen(s);
			x->tab[i].node = r;
		} else if ((e->msg != NULL && r->msg == NULL) ||
		    (e->msg != NULL && r->msg != NULL && e->msg->reply &&
		    !r->msg->reply)) {
			x->tab[i].node = r;
		}
	}
	pp = &x->root.child;
	while ((r = *pp) != NULL) {
		const char *s = imap_thread_subject(r);

		if (*s == '\0' || (e = x->tab[imap_thread_slot(x, s,
		    strlen(s))].node) == r || e == NULL) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;		/* r leaves the root set */
		r->next = NULL;
		if (e->msg == NULL && r->msg == NULL) {
			struct imap_thread_node *c = r->child, *nx;

			for (; c != NULL; c = nx) {
				nx = c->next;
				c->parent = NULL;
				c->next = NULL;
				imap_thread_link(e, c);
			}
		} else if (e->msg == NULL) {
			imap_thread_link(e, r);
		} else if (r->msg != NULL && r->msg->reply &&
		    !e->msg->reply) {
			imap_thread_link(e, r);
		} else {
			/*
			 * A dummy takes e's place in the root set, e its
			 * only child. Finding e's place would walk the root
			 * set (quadratic over many subjects), so e's
			 * container stays where it is and becomes the dummy:
			 * e's message and children move to a new container
			 * below it. Each container is emptied so once at most.
			 */
			d = imap_thread_new(x, e->msg);
			d->child = e->child;
			for (k = d->child; k != NULL; k = k->next)
				k->parent = d;
			e->msg = NULL;
			e->child = d;
			d->parent = e;
			imap_thread_link(e, r);
		}
	}
	/* the root set's members have no parent */
	for (r = x->root.child; r != NULL; r = r->next)
		r->parent = NULL;
}

/* imap_thread_print - a container's thread-members / thread-nested */
static void
imap_thread_print(const struct imap_thread_ctx *x,
    const struct imap_thread_node *n, struct buf *out)
{
	const struct imap_thread_node *c;
	bool first = true;

	/* a chain of single children is a run of numbers */
	while (n->msg != NULL) {
		if (!first)
			buf_putc(out, ' ');
		buf_printf(out, "%u", x->uid ? n->msg->uid : n->msg->seq);
		first = false;
		if (n->child == NULL)
			return;
		if (n->child->next != NULL)
			break;
		n = n->child;
	}
	if (!first)
		buf_putc(out, ' ');
	for (c = n->child; c != NULL; c = c->next) {
		buf_putc(out, '(');
		imap_thread_print(x, c, out);
		buf_putc(out, ')');
	}
}

/* imap_thread_cut - bound every thread's depth: a container at a depth
 * that is a multiple of IMAP_THREAD_DEPTH_MAX starts a thread of its own
 * (an iterative walk: a hostile References chain is not recursed) */
static void
imap_thread_cut(struct imap_thread_ctx *x)
{
	struct imap_thread_node **stack, *n;
	size_t sp;

	stack = xreallocarray(NULL, x->nnodes + 1, sizeof(*stack));
	for (size_t i = 0; i < x->nnodes; i++) {
		sp = 0;
		for (n = &x->nodes[i]; n != NULL && n->depth < 0;
		    n = n->parent)
			stack[sp++] = n;
		while (sp > 0) {
			n = stack[--sp];
			n->depth = n->parent ? n->parent->depth + 1 : 0;
		}
	}
	for (size_t i = 0; i < x->nnodes; i++)
		if (x->nodes[i].depth > 0 &&
		    x->nodes[i].depth % IMAP_THREAD_DEPTH_MAX == 0)
			imap_thread_unlink(&x->nodes[i]);
	x_free(&stack);
}

/* imap_thread_references - RFC 5256 2.2 REFERENCES into out */
static void
imap_thread_references(const struct imap_sort_msg *msgs, size_t n,
    bool uid, struct buf *out)
{
	struct imap_thread_ctx x;
	struct imap_thread_node *prev, *mc, *c, **tmp;
	size_t nrefs = 0, i;

	memset(&x, 0, sizeof(x));
	x.uid = uid;
	for (i = 0; i < n; i++)
		for (const char *p = msgs[i].refs; p != NULL && *p; p++)
			nrefs += *p == '>';
	x.cap = 2 * n + nrefs + 1;
	x.nodes = xreallocarray(NULL, x.cap, sizeof(*x.nodes));
	for (x.tabsize = 16; x.tabsize < 2 * x.cap; x.tabsize *= 2)
		;
	x.tab = xcalloc(x.tabsize, sizeof(*x.tab));
	/* step 1 */
	for (i = 0; i < n; i++) {
		const struct imap_sort_msg *m = &msgs[i];
		const char *p = m->refs, *gt;

		prev = NULL;
		while (p != NULL && (gt = strchr(p, '>')) != NULL) {
			c = imap_thread_id(&x, p, (size_t)(gt - p + 1));
			if (prev != NULL && c->parent == NULL && c != prev)
				imap_thread_link(prev, c);
			prev = c;
			p = gt + 1;
		}
		mc = NULL;
		if (m->msgid != NULL) {
			size_t s = imap_thread_slot(&x, m->msgid,
			    strlen(m->msgid));

			if (x.tab[s].id == NULL) {
				mc = imap_thread_id(&x, m->msgid,
				    strlen(m->msgid));
			} else if (x.tab[s].node->msg == NULL) {
				mc = x.tab[s].node;	/* a referenced id */
			}
		}
		if (mc == NULL)
			mc = imap_thread_new(&x, NULL); /* no id, dup */
		mc->msg = m;
		imap_thread_unlink(mc);
		if (prev != NULL)
			imap_thread_link(prev, mc);
	}
	imap_thread_cut(&x);
	/* step 2: the root set */
	for (i = 0; i < x.nnodes; i++)
		if (x.nodes[i].parent == NULL) {
			x.nodes[i].next = x.root.child;
			x.root.child = &x.nodes[i];
		}
	/* steps 3-6 */
	tmp = xreallocarray(NULL, x.cap, sizeof(*tmp));
	imap_thread_prune(&x, &x.root);
	imap_thread_sort(&x.root, tmp);
	imap_thread_group(&x);
	imap_thread_sort(&x.root, tmp);
	for (c = x.root.child; c != NULL; c = c->next) {
		buf_putc(out, '(');
		imap_thread_print(&x, c, out);
		buf_putc(out, ')');
	}
	x_free(&tmp);
	x_free(&x.tab);
	x_free(&x.nodes);
}

/* imap_thread_subj_cmp - ORDEREDSUBJECT's order: subject, date, seq */
static int
imap_thread_subj_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_msg *a = *(const struct imap_sort_msg *const *)
	    pa, *b = *(const struct imap_sort_msg *const *)pb;
	int r = strcmp(a->subject ? a->subject : "",
	    b->subject ? b->subject : "");

	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* a thread of ORDEREDSUBJECT: its messages in the sorted array */
struct imap_thread_run {
	size_t first, n;
};

/* imap_thread_run_cmp - threads by their first message's date */
static int
imap_thread_run_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_msg *const *v = arg;
	const struct imap_sort_msg *a = v[((const struct imap_thread_run *)
	    pa)->first], *b = v[((const struct imap_thread_run *)pb)->first];

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* imap_thread_ordered - ORDEREDSUBJECT into out */
static void
imap_thread_ordered(const struct imap_sort_msg *msgs, size_t n, bool uid,
    struct buf *out)
{
	const struct imap_sort_msg **v;
	struct imap_thread_run *runs;
	size_t nruns = 0, i, j;

	v = xreallocarray(NULL, n, sizeof(*v));
	runs = xreallocarray(NULL, n, sizeof(*runs));
	for (i = 0; i < n; i++)
		v[i] = &msgs[i];
	qsort(v, n, sizeof(*v), imap_thread_subj_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(v[i]->subject ?
		    v[i]->subject : "", v[j]->subject ? v[j]->subject :
		    "") == 0; j++)
			;
		runs[nruns].first = i;
		runs[nruns++].n = j - i;
	}
	qsort_r(runs, nruns, sizeof(*runs), imap_thread_run_cmp, v);
	for (i = 0; i < nruns; i++) {
		const struct imap_sort_msg *const *m = v + runs[i].first;

		buf_printf(out, "(%u", uid ? m[0]->uid : m[0]->seq);
		if (runs[i].n == 2)
			buf_printf(out, " %u", uid ? m[1]->uid : m[1]->seq);
		else if (runs[i].n > 2) {
			buf_putc(out, ' ');
			for (j = 1; j < runs[i].n; j++)
				buf_printf(out, "(%u)", uid ? m[j]->uid :
				    m[j]->seq);
		}
		buf_putc(out, ')');
	}
	x_free(&v);
	x_free(&runs);
}

/* imap_thread_build - the threads of msgs[0..n) */
void
imap_thread_build(const struct imap_sort_msg *msgs, size_t n,
    enum imap_thread_alg alg, bool uid, struct buf *out)
{
	if (n == 0)
		return;
	if (alg == IMAP_THREAD_REFERENCES)
		imap_thread_references(msgs, n, uid, out);
	else
		imap_thread_ordered(msgs, n, uid, out);
}

/* imap_thread_answer - the untagged THREAD answer of ev's matches */
void
imap_thread_answer(const struct imap_search_eval *ev,
    enum imap_thread_alg alg, bool uid, struct buf *out)
{
	struct imap_sort_msg *msgs;

	msgs = xreallocarray(NULL, ev->n ? ev->n : 1, sizeof(*msgs));
	for (size_t i = 0; i < ev->n; i++) {
		imap_sort_msg_load(ev->src, ev->seq[i] - 1, true, &msgs[i]);
		msgs[i].uid = ev->uid[i];
	}
	buf_puts(out, "* THREAD");
	if (ev->n > 0)
		buf_putc(out, ' ');
	imap_thread_build(msgs, ev->n, alg, uid, out);
	buf_puts(out, "\r\n");
	for (size_t i = 0; i < ev->n; i++)
		imap_sort_msg_free(&msgs[i]);
	x_free(&msgs);
}
