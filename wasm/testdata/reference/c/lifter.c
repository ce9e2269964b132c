/*
 * The reference lifter of the ABI benchmark (wasm/testdata/reference/lifter, in Go through
 * sdk) written again in C against ABI v1 directly, with sdk/c/ttp.h: the same manifest's
 * fields, the same eight predicates, the same drafts. It shows what a call costs when the
 * guest's loops are the source's loops (RATIONALE.md, "A guest that is not Go").
 *
 * Built by `make cguest` into lifter.wasm, the committed fixture beside it:
 *   clang --target=wasm32-wasi -O2 -msimd128 -mexec-model=reactor -Wl,--strip-all ...
 * It imports nothing and has no runtime: an _initialize that runs no constructor, and no
 * allocator but ttp_sbrk.
 *
 * It answers as the Go twin does, including at the edges: a rule is configured when its
 * params are empty (a param is unknown to a lifter that reads none, as the sdk says); only
 * rules applying to "session" are run, in request order; a malformed record, or one of a
 * kind or field count the manifest did not declare, gets an error reply.
 */
#include "ttp.h"

/* The manifest: the Go reference's, under its own name. */
static const char manifest[] =
    "{\"abi\":1,\"name\":\"reference-c\",\"version\":\"1.0.0\",\"rule_kinds\":[\"lifter:reference_\"],"
    "\"kinds\":[{\"source_kind\":\"session\",\"fields\":[\"payload.commands[].text\",\"payload.command_times_ms\","
    "\"payload.duration_ms\",\"payload.login_failures\",\"payload.login_success\",\"payload.downloads[].url\","
    "\"payload.client_version\",\"payload.usernames\"]}],\"evidence_keys\":[\"score\"]}";

/* Field indexes in the record, in declared order, and the evidence key. */
enum { TEXTS, TIMES, DURATION, FAILURES, SUCCESS, URLS, CLIENT, USERS, NFIELDS };
enum { SCORE_KEY = 0 };
static const uint16_t kind_fields[1] = {NFIELDS}; /* fields declared per kind */

/* A rule the lifter runs on session records: its index in the request and its emits count. */
typedef struct {
	uint16_t index;
	uint32_t emits;
} rule;

static rule *rules;        /* the configured rules applying to session, in request order */
static uint32_t nrules;    /* how many */
static uint32_t rules_cap; /* entries rules can hold */

static ttp_record rec;
static ttp_reply reply;

TTP_EXPORT("ttp_abi_v1") void ttp_abi_v1(void) {}

TTP_EXPORT("ttp_alloc") uint32_t ttp_alloc(uint32_t len) { return ttp_input_alloc(len); }

TTP_EXPORT("ttp_describe") uint64_t ttp_describe(void) { return ttp_ptrlen(manifest, sizeof manifest - 1); }

/* ---- Configure ---- */

/* out is the configure reply being written, grown by ttp_sbrk. */
static unsigned char *out;
static uint32_t out_len, out_cap;

static int put(const void *s, uint32_t n) {
	if (out_len + n > out_cap) {
		uint32_t c = 2 * out_cap > out_len + n ? 2 * out_cap : out_len + n + 256;
		unsigned char *p = ttp_sbrk(c);
		if (p == NULL)
			return 0;
		if (out_len)
			__builtin_memcpy(p, out, out_len);
		out = p;
		out_cap = c;
	}
	__builtin_memcpy(out + out_len, s, n);
	out_len += n;
	return 1;
}

static int puts_(const char *s) {
	uint32_t n = 0;
	while (s[n])
		n++;
	return put(s, n);
}

static uint64_t configure_error(const char *msg) {
	static const char oom[] = "{\"error\":\"reference-c: out of memory\"}";
	out_len = 0;
	if (!puts_("{\"error\":\"reference-c: ") || !puts_(msg) || !puts_("\"}"))
		return ttp_ptrlen(oom, sizeof oom - 1);
	return ttp_ptrlen(out, out_len);
}

/* add_rule appends a rule to run on session records. */
static int add_rule(uint16_t index, uint32_t emits) {
	if (nrules == rules_cap) {
		uint32_t c = rules_cap ? 2 * rules_cap : 16;
		rule *p = ttp_sbrk(c * sizeof(rule));
		if (p == NULL)
			return 0;
		if (nrules)
			__builtin_memcpy(p, rules, nrules * sizeof(rule));
		rules = p;
		rules_cap = c;
	}
	rules[nrules].index = index;
	rules[nrules].emits = emits;
	nrules++;
	return 1;
}

TTP_EXPORT("ttp_configure") uint64_t ttp_configure(uint32_t ptr, uint32_t len) {
	const unsigned char *req = ttp_input_at(ptr, len);
	nrules = 0;
	out_len = 0;
	if (req == NULL)
		return configure_error("configure request outside the ttp_alloc buffer");
	ttp_json top = {req, req + len}, it, k, v;
	if (ttp_json_skip(req, req + len) == NULL || !ttp_json_open(&it, top, '{'))
		return configure_error("configure request: not a JSON object");
	int r, rejected = 0;
	uint32_t index = 0;
	while ((r = ttp_json_next(&it, &k, &v)) > 0) {
		if (!ttp_json_is(k, "rules"))
			continue;
		ttp_json list;
		if (!ttp_json_open(&list, v, '['))
			continue; /* null: no rules */
		ttp_json one;
		while ((r = ttp_json_next(&list, NULL, &one)) > 0) {
			if (index > 65535)
				return configure_error("configure request: more than 65535 rules");
			ttp_json fields, id = {0, 0};
			if (!ttp_json_open(&fields, one, '{'))
				return configure_error("configure request: a rule is not an object");
			uint32_t emits = 0, session = 0, params = 0;
			ttp_json params_v = {0, 0};
			while ((r = ttp_json_next(&fields, &k, &v)) > 0) {
				ttp_json sub, e;
				if (ttp_json_is(k, "id")) {
					id = v;
				} else if (ttp_json_is(k, "applies_to")) {
					if (ttp_json_open(&sub, v, '['))
						while (ttp_json_next(&sub, NULL, &e) > 0)
							session += ttp_json_is(e, "session");
				} else if (ttp_json_is(k, "emits")) {
					if (ttp_json_open(&sub, v, '['))
						while (ttp_json_next(&sub, NULL, &e) > 0)
							emits++;
				} else if (ttp_json_is(k, "params")) {
					if (ttp_json_open(&sub, v, '{')) {
						params_v = v;
						while (ttp_json_next(&sub, &e, &e) > 0)
							params++;
					} else if (!ttp_json_is(v, "null")) {
						return configure_error("configure request: params is not an object");
					}
				}
			}
			if (r < 0)
				return configure_error("configure request: malformed rule");
			if (params > 0) { /* the reference reads no params: each one is a typo */
				if (!puts_(rejected ? "," : "{\"rejected\":[") || !puts_("{\"rule\":") ||
				    !put(id.p ? id.p : (const unsigned char *)"\"\"", id.p ? (uint32_t)(id.end - id.p) : 2) ||
				    !puts_(",\"message\":\""))
					return configure_error("out of memory");
				ttp_json sub, pk, pv;
				ttp_json_open(&sub, params_v, '{');
				for (uint32_t n = 0; ttp_json_next(&sub, &pk, &pv) > 0; n++)
					if (!puts_(n ? "; params." : "params.") || !put(pk.p, (uint32_t)(pk.end - pk.p)) ||
					    !puts_(": unknown to this lifter (it reads no params)"))
						return configure_error("out of memory");
				if (!puts_("\"}"))
					return configure_error("out of memory");
				rejected++;
			} else {
				for (; session > 0; session--)
					if (!add_rule((uint16_t)index, emits))
						return configure_error("out of memory");
			}
			index++;
		}
		if (r < 0)
			return configure_error("configure request: malformed rules");
	}
	if (r < 0)
		return configure_error("configure request: malformed JSON");
	if (rejected == 0) {
		static const char ok[] = "{}";
		return ttp_ptrlen(ok, 2);
	}
	if (!puts_("]}"))
		return configure_error("out of memory");
	return ttp_ptrlen(out, out_len);
}

/* ---- Tag ---- */

TTP_EXPORT("ttp_tag") uint64_t ttp_tag(uint32_t ptr, uint32_t len) {
	ttp_reply_reset(&reply);
	const char *err = ttp_record_reset(&rec, ttp_input_at(ptr, len), len, kind_fields, 1);
	if (err != NULL) {
		ttp_reply_error(&reply, err);
		return ttp_reply_bytes(&reply);
	}

	int score = 0;
	if (ttp_len(&rec, TEXTS) > 5) /* 1: many commands */
		score++;

	/* 2: machine-speed median gap. The Go twin collects a gap after every entry that follows a
	 * non-negative one, sorts the gaps (sort.Float64s: NaN first) and tests the middle one
	 * against 400. Sorted so, the gaps hold nan NaNs, then the below ones under 400, then the
	 * rest: the middle one, at g/2, is under 400 exactly when nan <= g/2 < nan + below. One
	 * pass and three counts, no sort and no buffer. */
	uint32_t n, g = 0, nan = 0, below = 0;
	const unsigned char *t = ttp_numbers(&rec, TIMES, &n);
	double prev = -1;
#pragma clang loop unroll_count(4)
	for (uint32_t i = 0; i < n; i++) {
		double x = ttp_f64(t + 8 * i);
		if (prev >= 0) {
			double gap = x - prev;
			g++;
			nan += gap != gap;
			below += gap < 400;
		}
		prev = x;
	}
	if (g > 0 && nan <= g / 2 && g / 2 < nan + below)
		score++;

	int download = 0, chmod = 0;
	ttp_strings it = ttp_strings_of(&rec, TEXTS, TTP_STRING_LIST);
	const unsigned char *s;
	uint32_t sl;
	while (!(download && chmod) && ttp_strings_next(&it, &s, &sl)) { /* both found: the rest cannot change them */
		download = download || ttp_contains(s, sl, "wget") || ttp_contains(s, sl, "curl");
		chmod = chmod || ttp_contains(s, sl, "chmod +x");
	}
	score += download; /* 3 */
	score += chmod;    /* 4 */

	double d;
	if (ttp_float(&rec, DURATION, &d) && d > 0 && d < 10000) /* 5: short session */
		score++;

	int64_t f;
	int ok;
	if (ttp_int(&rec, FAILURES, &f) && f > 3 && ttp_bool(&rec, SUCCESS, &ok) && ok) /* 6 */
		score++;

	s = ttp_string(&rec, CLIENT, &sl);
	if (ttp_contains(s, sl, "Go") || ttp_contains(s, sl, "libssh")) /* 7 */
		score++;

	if (ttp_len(&rec, URLS) > 0 && ttp_len(&rec, USERS) > 0) /* 8 */
		score++;

	if (score >= 5) {
		for (uint32_t i = 0; i < nrules; i++) {
			if (rules[i].emits == 0) {
				ttp_reply_error(&reply, "reference-c: a rule without emits entries fired");
				break;
			}
			ttp_reply_draft(&reply, rules[i].index, 0, 1);
			ttp_reply_int(&reply, SCORE_KEY, score);
		}
	}
	return ttp_reply_bytes(&reply);
}
