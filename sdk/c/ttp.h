/*
 * ttp.h: the ttp plugin ABI v1 (abi/ABI.md) for lifters written in C, header only.
 *
 * A lifter is a wasm32 module with no runtime of its own: it exports ttp_abi_v1, ttp_alloc,
 * ttp_describe, ttp_configure and ttp_tag plus its memory, and imports nothing. This header
 * gives the pieces every such lifter needs, in plain C99 with no libc call:
 *
 *   - TTP_EXPORT and ttp_ptrlen: the exports' shape;
 *   - ttp_sbrk and ttp_input: memory from the end of the heap, and the input buffer
 *     ttp_alloc hands out (one buffer, grown only for a larger input);
 *   - ttp_record: the record reader, which validates a record completely (an error reply,
 *     never a trap, for a malformed one) and reads field i by index;
 *   - ttp_reply: the reply builder (drafts, evidence, error replies) in a growing buffer;
 *   - ttp_json: just enough of a JSON scanner to walk the configure request (rules, their
 *     applies_to, emits and params) without a parser.
 *
 * Build (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32):
 *
 *   clang --target=wasm32-wasi -O2 -msimd128 -mexec-model=reactor -Wl,--strip-all \
 *         -I sdk/c -o lifter.wasm lifter.c
 *
 * (wasm/testdata/reference/c/build.sh says why each flag.)
 *
 * wasm/testdata/reference/c/lifter.c is a complete lifter built on it (make cguest). A Rust
 * author can take the same layout: the functions below are short and map one to one onto
 * #[no_mangle] extern "C" functions over a static buffer.
 *
 * Every function is static inline: the header is the whole library, and the compiler keeps
 * only what a lifter calls.
 */
#ifndef TTP_H
#define TTP_H

#include <stddef.h>
#include <stdint.h>

/* ---- Exports ---- */

/* TTP_EXPORT(name) exports a function under name, e.g.
 *   TTP_EXPORT("ttp_tag") uint64_t ttp_tag(uint32_t ptr, uint32_t len) { ... } */
#define TTP_EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* The limits every host enforces (abi/wire.go). */
#define TTP_MAX_RECORD (1u << 20)
#define TTP_MAX_REPLY (1u << 20)
#define TTP_MAX_FIELDS 255

/* Record and evidence type tags. */
enum {
	TTP_NULL = 0,
	TTP_BOOL = 1,
	TTP_INT = 2,         /* i64 */
	TTP_FLOAT = 3,       /* f64 */
	TTP_STRING = 4,      /* u32 length, bytes */
	TTP_STRING_LIST = 5, /* u32 count, count x (u32 length, bytes) */
	TTP_NUMBER_LIST = 6, /* u32 count, count x f64 (NaN for a missing element) */
	TTP_PAIRS = 7        /* u32 count, count x (key string, value string) */
};

/* ttp_ptrlen packs a reply for the host: ptr << 32 | len. */
static inline uint64_t ttp_ptrlen(const void *p, uint32_t len) {
	return (uint64_t)(uintptr_t)p << 32 | len;
}

/* ---- Memory ---- */

extern unsigned char __heap_base; /* set by wasm-ld: the first byte past data and stack */

/* ttp_sbrk returns n fresh bytes (8-aligned) past everything handed out before, growing
 * linear memory as needed, or NULL when the host's memory cap refuses. Nothing is ever
 * freed: a lifter allocates its buffers once and grows them geometrically, so what it holds
 * stays within twice its largest input. */
static inline void *ttp_sbrk(uint32_t n) {
	static uintptr_t top;
	if (top == 0)
		top = ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7;
	uintptr_t p = top, end = p + (((uintptr_t)n + 7) & ~(uintptr_t)7);
	if (end < p)
		return NULL;
	uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
	if (end > have) {
		uintptr_t pages = (end - have + 65535u) / 65536u;
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
			return NULL;
	}
	top = end;
	return (void *)p;
}

/* TTP_SLACK readable bytes follow the input buffer, so that a 16-byte vector load that starts
 * in a string of the record never leaves linear memory (ttp_contains relies on it). */
#define TTP_SLACK 32

/* ttp_input is the buffer ttp_alloc hands out: ptr and cap. */
typedef struct {
	unsigned char *ptr;
	uint32_t cap;
} ttp_buffer;

static ttp_buffer ttp_input;

/* ttp_input_alloc is ttp_alloc's body: the input buffer, grown (to at least double) only
 * when len exceeds it. It returns 0 when memory cannot grow, which the host reports. */
static inline uint32_t ttp_input_alloc(uint32_t len) {
	if (ttp_input.ptr == NULL || len > ttp_input.cap) {
		uint32_t c = len > 2 * ttp_input.cap ? len : 2 * ttp_input.cap;
		if (c < 256)
			c = 256;
		unsigned char *p = ttp_sbrk(c + TTP_SLACK);
		if (p == NULL)
			return 0;
		ttp_input.ptr = p;
		ttp_input.cap = c;
	}
	return (uint32_t)(uintptr_t)ttp_input.ptr;
}

/* ttp_input_at returns the len bytes at ptr when they lie in the input buffer, else NULL:
 * the host always writes there, and checking it keeps a lifter from reading anything else. */
static inline const unsigned char *ttp_input_at(uint32_t ptr, uint32_t len) {
	uint32_t base = (uint32_t)(uintptr_t)ttp_input.ptr;
	if (ttp_input.ptr == NULL || ptr < base || (uint64_t)ptr + len > (uint64_t)base + ttp_input.cap)
		return NULL;
	return (const unsigned char *)(uintptr_t)ptr;
}

/* ---- Little-endian loads ---- */

static inline uint32_t ttp_u32(const unsigned char *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ttp_u64(const unsigned char *p) {
	return (uint64_t)ttp_u32(p) | (uint64_t)ttp_u32(p + 4) << 32;
}

static inline double ttp_f64(const unsigned char *p) {
	uint64_t b = ttp_u64(p);
	double f;
	__builtin_memcpy(&f, &b, 8);
	return f;
}

/* ---- Record (input of ttp_tag) ---- */

/* ttp_record is a validated view of one record: field i is read through off[i], the offset
 * of its type tag. It aliases the input buffer. */
typedef struct {
	const unsigned char *data;
	uint32_t len;
	uint8_t kind;    /* index into the manifest's kinds */
	uint16_t fields; /* number of fields */
	uint32_t off[TTP_MAX_FIELDS];
} ttp_record;

/* ttp_skip returns the offset just past the value whose tag is at p, or -1 when it runs past
 * len or its tag is unknown. Every bound is checked in 64 bits, so no length overflows. */
static inline int64_t ttp_skip(const unsigned char *d, uint32_t len, uint32_t p) {
	if (p >= len)
		return -1;
	uint8_t tag = d[p++];
	uint64_t rest = len - p;
	switch (tag) {
	case TTP_NULL:
		return p;
	case TTP_BOOL:
		return rest >= 1 ? (int64_t)p + 1 : -1;
	case TTP_INT:
	case TTP_FLOAT:
		return rest >= 8 ? (int64_t)p + 8 : -1;
	case TTP_STRING:
		if (rest < 4 || ttp_u32(d + p) > rest - 4)
			return -1;
		return (int64_t)p + 4 + ttp_u32(d + p);
	case TTP_NUMBER_LIST:
		if (rest < 4 || 8 * (uint64_t)ttp_u32(d + p) > rest - 4)
			return -1;
		return (int64_t)p + 4 + 8 * (int64_t)ttp_u32(d + p);
	case TTP_STRING_LIST:
	case TTP_PAIRS: {
		if (rest < 4)
			return -1;
		uint64_t n = ttp_u32(d + p), q = (uint64_t)p + 4;
		if (tag == TTP_PAIRS)
			n *= 2;
		if (n > len) /* each entry takes at least 4 bytes: a cheap bound on the loop */
			return -1;
		/* Unrolled: the host's termination check runs at every loop header, 36 ns each
		 * under wazero 1.12, more than the work of an iteration. */
#pragma clang loop unroll_count(4)
		for (; n > 0; n--) {
			if (len - q < 4)
				return -1;
			uint64_t l = ttp_u32(d + q);
			q += 4;
			if (l > len - q)
				return -1;
			q += l;
		}
		return (int64_t)q;
	}
	}
	return -1;
}

/* ttp_record_reset reads data into r and returns NULL, or a message saying why the record
 * cannot be read (the lifter answers it with ttp_reply_error). fields[k] is the number of
 * fields the manifest declares for kind k, nkinds the number of kinds: it checks the version,
 * the kind and field count against them, every value's bounds and tag, and that no byte
 * trails the last field. With constant counts (a static const array) the compiler unrolls
 * the loop over the fields entirely. */
static inline const char *ttp_record_reset(ttp_record *r, const unsigned char *data, uint32_t len, const uint16_t *fields,
                                           uint32_t nkinds) {
	r->fields = 0;
	if (data == NULL)
		return "ttp: record outside the ttp_alloc buffer";
	if (len < 4)
		return "ttp: record shorter than its header";
	if (data[0] != 1)
		return "ttp: record of an unknown version";
	if (data[1] >= nkinds)
		return "ttp: record of a kind index the manifest does not declare";
	uint32_t n = (uint32_t)data[2] | (uint32_t)data[3] << 8, want = fields[data[1]];
	if (n != want || want > TTP_MAX_FIELDS)
		return "ttp: record of another field count than the manifest declares";
	uint32_t p = 4;
#pragma clang loop unroll(full)
	for (uint32_t i = 0; i < want; i++) {
		r->off[i] = p;
		int64_t end = ttp_skip(data, len, p);
		if (end < 0)
			return "ttp: record field truncated or of an unknown type tag";
		p = (uint32_t)end;
	}
	if (p != len)
		return "ttp: record with trailing bytes";
	r->data = data;
	r->len = len;
	r->kind = data[1];
	r->fields = (uint16_t)n;
	return NULL;
}

/* ttp_type returns field i's type tag (TTP_NULL when i is out of range). */
static inline uint8_t ttp_type(const ttp_record *r, uint32_t i) {
	return i < r->fields ? r->data[r->off[i]] : TTP_NULL;
}

/* ttp_string returns field i's bytes and sets *len when it is a string, else "" and 0. The
 * bytes are not NUL-terminated. */
static inline const unsigned char *ttp_string(const ttp_record *r, uint32_t i, uint32_t *len) {
	if (ttp_type(r, i) != TTP_STRING) {
		*len = 0;
		return (const unsigned char *)"";
	}
	const unsigned char *p = r->data + r->off[i] + 1;
	*len = ttp_u32(p);
	return p + 4;
}

/* ttp_float sets *v to field i when it is a number (int or float) and returns 1, else 0. */
static inline int ttp_float(const ttp_record *r, uint32_t i, double *v) {
	switch (ttp_type(r, i)) {
	case TTP_FLOAT:
		*v = ttp_f64(r->data + r->off[i] + 1);
		return 1;
	case TTP_INT:
		*v = (double)(int64_t)ttp_u64(r->data + r->off[i] + 1);
		return 1;
	}
	return 0;
}

/* ttp_int sets *v to field i when it is a number, a float truncated toward zero (saturated
 * at the int64 range, as Go's conversion on wasm is; NaN and infinities are not numbers
 * here), and returns 1, else 0. */
static inline int ttp_int(const ttp_record *r, uint32_t i, int64_t *v) {
	switch (ttp_type(r, i)) {
	case TTP_INT:
		*v = (int64_t)ttp_u64(r->data + r->off[i] + 1);
		return 1;
	case TTP_FLOAT: {
		double f = ttp_f64(r->data + r->off[i] + 1);
		if (f != f || f == __builtin_inf() || f == -__builtin_inf())
			return 0;
		if (f >= 9223372036854775807.0)
			*v = INT64_MAX;
		else if (f <= -9223372036854775808.0)
			*v = INT64_MIN;
		else
			*v = (int64_t)f;
		return 1;
	}
	}
	return 0;
}

/* ttp_bool sets *v to field i when it is a bool and returns 1, else 0. */
static inline int ttp_bool(const ttp_record *r, uint32_t i, int *v) {
	if (ttp_type(r, i) != TTP_BOOL)
		return 0;
	*v = r->data[r->off[i] + 1] != 0;
	return 1;
}

/* ttp_len returns the number of entries of a list or pairs field (0 otherwise). */
static inline uint32_t ttp_len(const ttp_record *r, uint32_t i) {
	switch (ttp_type(r, i)) {
	case TTP_STRING_LIST:
	case TTP_NUMBER_LIST:
	case TTP_PAIRS:
		return ttp_u32(r->data + r->off[i] + 1);
	}
	return 0;
}

/* ttp_strings is a cursor over a string list field (or a pairs field's keys and values
 * alternately): while (ttp_strings_next(&it, &s, &n)) { ... }. */
typedef struct {
	const unsigned char *p;
	uint32_t left;
} ttp_strings;

/* ttp_strings_of returns a cursor over field i, empty unless it has type tag want
 * (TTP_STRING_LIST or TTP_PAIRS). */
static inline ttp_strings ttp_strings_of(const ttp_record *r, uint32_t i, uint8_t want) {
	ttp_strings it = {0, 0};
	if (ttp_type(r, i) == want && (want == TTP_STRING_LIST || want == TTP_PAIRS)) {
		const unsigned char *p = r->data + r->off[i] + 1;
		it.left = ttp_u32(p) * (want == TTP_PAIRS ? 2 : 1);
		it.p = p + 4;
	}
	return it;
}

static inline int ttp_strings_next(ttp_strings *it, const unsigned char **s, uint32_t *len) {
	if (it->left == 0)
		return 0;
	*len = ttp_u32(it->p);
	*s = it->p + 4;
	it->p += 4 + *len;
	it->left--;
	return 1;
}

/* ttp_numbers returns field i's entries (unaligned f64s, read with ttp_f64) and sets *n, or
 * NULL and 0 unless it is a number list. */
static inline const unsigned char *ttp_numbers(const ttp_record *r, uint32_t i, uint32_t *n) {
	*n = 0;
	if (ttp_type(r, i) != TTP_NUMBER_LIST)
		return NULL;
	const unsigned char *p = r->data + r->off[i] + 1;
	*n = ttp_u32(p);
	return p + 4;
}

/* ttp_contains reports whether the literal lit (NUL-terminated, best a string literal, so
 * that its length and bytes are constants) occurs in s[0:n], where s points into the input
 * buffer.
 *
 * Built with -msimd128 it tests 16 start positions at once: for each byte of lit one
 * unaligned 16-byte load and a compare, ANDed, so a string of up to 15 + strlen(lit) bytes
 * is decided with no loop iteration at all (loops are what the host's termination checks
 * cost: one per iteration). The loads read up to 15 + strlen(lit) bytes past s[n], which
 * TTP_SLACK keeps inside memory, and the mask drops the start positions past n. */
#ifdef __wasm_simd128__
#include <wasm_simd128.h>

static inline uint32_t ttp_match16(const unsigned char *p, const char *lit, uint32_t m) {
	v128_t eq = wasm_i8x16_splat(-1);
#pragma clang loop unroll(full)
	for (uint32_t k = 0; k < m && k < 32; k++)
		eq = wasm_v128_and(eq, wasm_i8x16_eq(wasm_v128_load(p + k), wasm_i8x16_splat((int8_t)lit[k])));
	return (uint32_t)wasm_i8x16_bitmask(eq);
}
#endif

static inline int ttp_contains(const unsigned char *s, uint32_t n, const char *lit) {
	uint32_t m = __builtin_strlen(lit);
	if (m == 0)
		return 1;
	if (m > n)
		return 0;
	uint32_t starts = n - m + 1; /* positions where lit may begin */
#ifdef __wasm_simd128__
	if (m <= 32) {
		uint32_t mask = ttp_match16(s, lit, m);
		if (starts < 16)
			return (mask & ((1u << starts) - 1)) != 0;
		if (mask)
			return 1;
		for (uint32_t off = 16; off < starts; off += 16) {
			mask = ttp_match16(s + off, lit, m);
			if (starts - off < 16)
				mask &= (1u << (starts - off)) - 1;
			if (mask)
				return 1;
		}
		return 0;
	}
#endif
	unsigned char c0 = (unsigned char)lit[0];
	for (uint32_t i = 0; i < starts; i++) {
		if (s[i] != c0)
			continue;
		uint32_t j = 1;
		while (j < m && s[i + j] == (unsigned char)lit[j])
			j++;
		if (j == m)
			return 1;
	}
	return 0;
}

/* ---- Reply (output of ttp_tag) ---- */

/* ttp_reply builds a reply in a buffer from ttp_sbrk that it keeps and grows: reset it per
 * call, add drafts and their evidence, hand ttp_reply_bytes to the host. A reply it cannot
 * grow (memory cap) or that passes TTP_MAX_REPLY becomes an error reply saying so. */
typedef struct {
	unsigned char *buf;
	uint32_t len, cap;
	uint32_t drafts;
	int32_t ev; /* offset of the current draft's evidence count, -1 before the first draft */
	int failed;
} ttp_reply;

/* ttp_reply_room makes room for n more bytes and returns 0 when it cannot. */
static inline int ttp_reply_room(ttp_reply *b, uint32_t n) {
	if (b->failed)
		return 0;
	if ((uint64_t)b->len + n > TTP_MAX_REPLY)
		return 0;
	if (b->len + n <= b->cap)
		return 1;
	uint32_t c = 2 * b->cap > b->len + n ? 2 * b->cap : b->len + n;
	if (c < 256)
		c = 256;
	unsigned char *p = ttp_sbrk(c);
	if (p == NULL)
		return 0;
	if (b->len)
		__builtin_memcpy(p, b->buf, b->len);
	b->buf = p;
	b->cap = c;
	return 1;
}

static inline void ttp_put_u32(unsigned char *p, uint32_t v) {
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline void ttp_put_u64(unsigned char *p, uint64_t v) {
	ttp_put_u32(p, (uint32_t)v);
	ttp_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ttp_reply_error turns b into an error reply carrying msg (NUL-terminated). Its buffer is
 * static when b's cannot hold it, so an error reply never fails. */
static inline void ttp_reply_error(ttp_reply *b, const char *msg) {
	static unsigned char fallback[8 + 120];
	uint32_t n = 0;
	while (msg[n])
		n++;
	b->failed = 0;
	b->len = 0;
	if (!ttp_reply_room(b, 8 + n)) {
		b->buf = fallback;
		b->cap = sizeof fallback;
		if (n > sizeof fallback - 8)
			n = sizeof fallback - 8;
	}
	unsigned char *p = b->buf;
	p[0] = 1, p[1] = 1, p[2] = 0, p[3] = 0;
	ttp_put_u32(p + 4, n);
	__builtin_memcpy(p + 8, msg, n);
	b->len = 8 + n;
	b->failed = 1; /* a fallback's cap is under 256: the next reset takes a buffer of its own */
}

/* ttp_reply_reset starts a new, empty OK reply. */
static inline void ttp_reply_reset(ttp_reply *b) {
	if (b->cap < 256) { /* first call, or after a fallback error reply */
		b->buf = NULL;
		b->cap = 0;
	}
	b->len = 0;
	b->drafts = 0;
	b->ev = -1;
	b->failed = 0;
	if (!ttp_reply_room(b, 8)) {
		ttp_reply_error(b, "ttp: no memory for the reply");
		return;
	}
	__builtin_memset(b->buf, 0, 8);
	b->buf[0] = 1;
	b->len = 8;
}

static inline void ttp_reply_overflow(ttp_reply *b) {
	if (!b->failed)
		ttp_reply_error(b, "ttp: reply over the host's 1 MiB cap or out of memory");
}

/* ttp_reply_draft starts a draft: the rule's index in the configure request, the emits
 * entry, and the scale in [0, 1] applied to its confidence. */
static inline void ttp_reply_draft(ttp_reply *b, uint16_t rule, uint8_t emit, double scale) {
	if (b->failed)
		return;
	if (!(scale >= 0 && scale <= 1)) {
		ttp_reply_error(b, "ttp: draft scale outside [0, 1]");
		return;
	}
	if (!ttp_reply_room(b, 12)) {
		ttp_reply_overflow(b);
		return;
	}
	unsigned char *p = b->buf + b->len;
	p[0] = (unsigned char)rule;
	p[1] = (unsigned char)(rule >> 8);
	p[2] = emit;
	p[3] = 0;
	uint64_t bits;
	__builtin_memcpy(&bits, &scale, 8);
	ttp_put_u64(p + 4, bits);
	b->ev = (int32_t)(b->len + 3);
	b->len += 12;
	ttp_put_u32(b->buf + 4, ++b->drafts);
}

/* ttp_reply_key opens one evidence entry of the current draft and returns 0 when it cannot
 * (no draft, 255 entries already, no room for n payload bytes). */
static inline int ttp_reply_key(ttp_reply *b, uint8_t key, uint32_t n) {
	if (b->failed || b->ev < 0)
		return 0;
	if (b->buf[b->ev] == 255) {
		ttp_reply_error(b, "ttp: more than 255 evidence entries in a draft");
		return 0;
	}
	if (!ttp_reply_room(b, 1 + n)) {
		ttp_reply_overflow(b);
		return 0;
	}
	b->buf[b->ev]++;
	b->buf[b->len++] = key;
	return 1;
}

/* ttp_reply_int adds evidence key = v (exact up to 2^53, as every JSON number). */
static inline void ttp_reply_int(ttp_reply *b, uint8_t key, int64_t v) {
	if (ttp_reply_key(b, key, 9)) {
		b->buf[b->len] = TTP_INT;
		ttp_put_u64(b->buf + b->len + 1, (uint64_t)v);
		b->len += 9;
	}
}

/* ttp_reply_number adds evidence key = f; an integral f travels as an integer, as the Go sdk
 * sends it. NaN and infinities have no JSON form: they fail the call. */
static inline void ttp_reply_number(ttp_reply *b, uint8_t key, double f) {
	if (f != f || f == __builtin_inf() || f == -__builtin_inf()) {
		ttp_reply_error(b, "ttp: evidence number without a JSON form");
		return;
	}
	if (f == (double)(int64_t)f && f <= 9007199254740992.0 && f >= -9007199254740992.0) {
		ttp_reply_int(b, key, (int64_t)f);
		return;
	}
	if (ttp_reply_key(b, key, 9)) {
		uint64_t bits;
		__builtin_memcpy(&bits, &f, 8);
		b->buf[b->len] = TTP_FLOAT;
		ttp_put_u64(b->buf + b->len + 1, bits);
		b->len += 9;
	}
}

/* ttp_reply_bool adds evidence key = v. */
static inline void ttp_reply_bool(ttp_reply *b, uint8_t key, int v) {
	if (ttp_reply_key(b, key, 2)) {
		b->buf[b->len] = TTP_BOOL;
		b->buf[b->len + 1] = v != 0;
		b->len += 2;
	}
}

/* ttp_reply_string adds evidence key = s[0:n] (copied). */
static inline void ttp_reply_string(ttp_reply *b, uint8_t key, const unsigned char *s, uint32_t n) {
	if (ttp_reply_key(b, key, 5 + n)) {
		b->buf[b->len] = TTP_STRING;
		ttp_put_u32(b->buf + b->len + 1, n);
		__builtin_memcpy(b->buf + b->len + 5, s, n);
		b->len += 5 + n;
	}
}

/* ttp_reply_bytes returns the reply as ptrlen for the host. */
static inline uint64_t ttp_reply_bytes(const ttp_reply *b) { return ttp_ptrlen(b->buf, b->len); }

/* ---- JSON, for the configure request ---- */

/* ttp_json is a span of JSON text: one value, or what is left of a container being walked.
 * The scanner is lenient: it balances brackets and finds the ends of strings, but checks
 * neither commas, number syntax nor UTF-8. The host sends well-formed JSON; the scanner only
 * has to find its parts, and to stop (never read past end) on anything else. */
typedef struct {
	const unsigned char *p, *end;
} ttp_json;

static inline const unsigned char *ttp_json_ws(const unsigned char *p, const unsigned char *end) {
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* ttp_json_string_end returns the byte past the string whose quote is at p, or NULL. */
static inline const unsigned char *ttp_json_string_end(const unsigned char *p, const unsigned char *end) {
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		if (*p == '\\') {
			p++;
			continue;
		}
		if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* ttp_json_skip returns the byte past the value starting at p (after white space), or
 * NULL. Containers are skipped with a depth count, not recursion, so no input can exhaust
 * the stack. */
static inline const unsigned char *ttp_json_skip(const unsigned char *p, const unsigned char *end) {
	uint32_t depth = 0;
	p = ttp_json_ws(p, end);
	do {
		if (p >= end)
			return NULL;
		unsigned char c = *p;
		if (c == '"') {
			if ((p = ttp_json_string_end(p, end)) == NULL)
				return NULL;
		} else if (c == '{' || c == '[') {
			depth++;
			p++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return NULL;
			depth--;
			p++;
		} else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (depth == 0)
				return NULL;
			p++;
		} else { /* a literal or a number: up to the next delimiter */
			const unsigned char *q = p;
			while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ':' && *p != ' ' && *p != '\t' &&
			       *p != '\n' && *p != '\r' && *p != '"' && *p != '{' && *p != '[')
				p++;
			if (p == q)
				return NULL;
		}
	} while (depth > 0);
	return p;
}

/* ttp_json_open starts walking the container (want '{' or '[') that is v, returning 0 when v
 * is not one. */
static inline int ttp_json_open(ttp_json *it, ttp_json v, unsigned char want) {
	const unsigned char *p = ttp_json_ws(v.p, v.end);
	if (p >= v.end || *p != want)
		return 0;
	it->p = p + 1;
	it->end = v.end;
	return 1;
}

/* ttp_json_next steps to the next element of the container being walked: for an object it
 * sets *key to the key's raw bytes (between the quotes, escapes left as they are), for an
 * array key may be NULL. It sets *v to the element and returns 1, or returns 0 at the end
 * and -1 on malformed input. */
static inline int ttp_json_next(ttp_json *it, ttp_json *key, ttp_json *v) {
	const unsigned char *p = ttp_json_ws(it->p, it->end);
	if (p >= it->end)
		return -1;
	if (*p == '}' || *p == ']') {
		it->p = p + 1;
		return 0;
	}
	if (*p == ',') {
		p = ttp_json_ws(p + 1, it->end);
	}
	if (key != NULL) {
		const unsigned char *k = p, *e = ttp_json_string_end(p, it->end);
		if (e == NULL)
			return -1;
		key->p = k + 1;
		key->end = e - 1;
		p = ttp_json_ws(e, it->end);
		if (p >= it->end || *p != ':')
			return -1;
		p++;
	}
	const unsigned char *e = ttp_json_skip(p, it->end);
	if (e == NULL)
		return -1;
	v->p = ttp_json_ws(p, e);
	v->end = e;
	it->p = e;
	return 1;
}

/* ttp_json_is reports whether the span (a key from ttp_json_next, or a string value with its
 * quotes) equals lit. Keys and values are compared raw: an escaped spelling does not match. */
static inline int ttp_json_is(ttp_json s, const char *lit) {
	const unsigned char *p = s.p, *end = s.end;
	if (p < end && *p == '"' && end - p >= 2 && end[-1] == '"') {
		p++;
		end--;
	}
	uint32_t i = 0;
	for (; lit[i]; i++)
		if (p + i >= end || p[i] != (unsigned char)lit[i])
			return 0;
	return p + i == end;
}

#endif /* TTP_H */
