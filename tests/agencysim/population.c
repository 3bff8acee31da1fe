/*
 * population.c: the synthetic world (see population.h).
 *
 * Every subject is drawn from its own splitmix64 stream seeded by the
 * world's seed, the subject's kind and its index, so subject i does not
 * change when the size grows. Identifiers that must be unique (resident
 * ids, credit codes, plates) are redrawn from the same stream on a
 * collision, checked against the subjects made before it.
 */
#include "population.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chakong/status.h"
#include "util.h"

const struct sim_bank_info sim_banks[SIM_NBANKS] = {
	{ "102", "中国工商银行", "icbc", "622202" },
	{ "103", "中国农业银行", "abc", "622848" },
	{ "104", "中国银行", "boc", "621661" },
	{ "105", "中国建设银行", "ccb", "621700" },
	{ "301", "交通银行", "bocom", "622262" },
	{ "308", "招商银行", "cmb", "621483" },
	{ "306", "广发银行", "cgb", "622568" },
	{ "403", "中国邮政储蓄银行", "psbc", "621799" },
};

struct region {
	const char *code; /* administrative division (GB/T 2260) */
	const char *name;
	const char *city;  /* for branches and certificates */
	const char *plate; /* licence plate prefix */
	const char *cert;  /* property certificate prefix */
};

static const struct region regions[] = {
	{ "440106", "广东省广州市天河区", "广州", "粤A", "粤" },
	{ "440104", "广东省广州市越秀区", "广州", "粤A", "粤" },
	{ "440105", "广东省广州市海珠区", "广州", "粤A", "粤" },
	{ "440103", "广东省广州市荔湾区", "广州", "粤A", "粤" },
	{ "440111", "广东省广州市白云区", "广州", "粤A", "粤" },
	{ "440113", "广东省广州市番禺区", "广州", "粤A", "粤" },
	{ "440604", "广东省佛山市禅城区", "佛山", "粤E", "粤" },
	{ "440605", "广东省佛山市南海区", "佛山", "粤E", "粤" },
	{ "440606", "广东省佛山市顺德区", "佛山", "粤E", "粤" },
	{ "440304", "广东省深圳市福田区", "深圳", "粤B", "粤" },
	{ "110105", "北京市朝阳区", "北京", "京N", "京" },
	{ "310115", "上海市浦东新区", "上海", "沪A", "沪" },
};

static const char *const streets[] = {
	"天河路",
	"中山大道",
	"环市东路",
	"江南大道",
	"解放北路",
	"花城大道",
	"体育西路",
	"滨江东路",
	"工业大道",
	"南海大道",
	"季华路",
	"大良路",
};

static const char *const surnames[] = {
	"王",
	"李",
	"张",
	"刘",
	"陈",
	"杨",
	"黄",
	"赵",
	"吴",
	"周",
	"徐",
	"孙",
	"马",
	"朱",
	"胡",
	"郭",
	"何",
	"高",
	"林",
	"罗",
	"郑",
	"梁",
	"谢",
	"宋",
	"唐",
	"许",
	"韩",
	"冯",
	"邓",
	"曹",
	"彭",
	"曾",
};

static const char *const given[] = {
	"伟",
	"芳",
	"娜",
	"敏",
	"静",
	"丽",
	"强",
	"磊",
	"军",
	"洋",
	"勇",
	"艳",
	"杰",
	"娟",
	"涛",
	"明",
	"超",
	"秀",
	"英",
	"华",
	"慧",
	"建",
	"国",
	"平",
	"红",
	"霞",
	"志",
	"文",
	"辉",
	"玉",
	"兰",
	"婷",
	"德",
	"海",
	"晓",
	"燕",
	"雪",
	"梅",
	"鹏",
	"飞",
	"斌",
	"宇",
	"浩",
	"然",
};

static const char *const brands[] = {
	"恒通",
	"华信",
	"宏达",
	"鼎盛",
	"金穗",
	"南粤",
	"嘉禾",
	"瑞丰",
	"远航",
	"天成",
};

static const char *const trades[] = {
	"科技",
	"贸易",
	"实业",
	"建设工程",
	"物流",
	"餐饮管理",
	"电子",
	"投资",
};

struct model {
	const char *wmi;
	const char *name;
};

static const struct model models[] = {
	{ "LFV", "一汽-大众 迈腾" },
	{ "LSV", "上汽大众 帕萨特" },
	{ "LHG", "广汽本田 雅阁" },
	{ "LVG", "广汽丰田 凯美瑞" },
	{ "LGB", "东风日产 轩逸" },
	{ "LRW", "特斯拉 Model 3" },
	{ "LC0", "比亚迪 汉" },
	{ "LSG", "上汽通用 别克君越" },
};

static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* A simple open-addressing set of subjects by id (and plates). */
struct slot {
	const char *key;
	const struct sim_subject *s;
	int aux; /* account: index in s->accounts */
};

struct table {
	struct slot *slots;
	size_t cap; /* power of two */
};

struct sim_population {
	uint64_t seed;
	struct sim_subject *persons;
	size_t npersons;
	struct sim_subject *enterprises;
	size_t nenterprises;
	struct table ids;      /* resident id / uscc -> subject */
	struct table accounts; /* "slot:account_no" -> subject */
	struct table plates;   /* plate -> subject */
	char *account_keys;    /* storage for the accounts table's keys */
	/* granted accounts' keys (the tables have room: load <= 1/2) */
	char grant_keys[SIM_MAX_GRANTS][32];
	size_t ngrants;
};

/* ---- randomness ------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t
next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
rng_init(struct rng *r, uint64_t seed, uint64_t kind, uint64_t index)
{
	r->s = seed ^ (kind * 0x632be59bd9b4e019ull);
	next(r);
	r->s ^= index * 0x8cb92ba72f3d8dd7ull;
	next(r);
}

/* Uniform in 0..n-1 (n small; the bias is irrelevant here). */
static uint32_t
below(struct rng *r, uint32_t n)
{
	return (uint32_t)(next(r) % n);
}

static int64_t
between(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next(r) % (uint64_t)(hi - lo + 1));
}

#define PICK(r, arr) ((arr)[below((r), CK_ARRAY_SIZE(arr))])

/* ---- tables ----------------------------------------------------------- */

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static int
table_init(struct table *t, size_t n)
{
	t->cap = 16;
	while (t->cap < n * 2)
		t->cap <<= 1;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	return t->slots == NULL ? CK_ENOMEM : 0;
}

static struct slot *
table_find(const struct table *t, const char *key)
{
	size_t i = (size_t)hash_str(key) & (t->cap - 1);

	while (t->slots[i].key != NULL) {
		if (strcmp(t->slots[i].key, key) == 0)
			return &t->slots[i];
		i = (i + 1) & (t->cap - 1);
	}
	return &t->slots[i]; /* the empty slot where it would go */
}

/* The caller sized the table for every key it will insert. */
static void
table_put(
    struct table *t, const char *key, const struct sim_subject *s, int aux)
{
	struct slot *sl = table_find(t, key);

	sl->key = key;
	sl->s = s;
	sl->aux = aux;
}

/* ---- check characters ------------------------------------------------- */

static char
resident_check(const char *d17)
{
	static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5,
		8, 4, 2 };
	int sum = 0;

	for (int i = 0; i < 17; i++)
		sum += (d17[i] - '0') * w[i];
	return "10X98765432"[sum % 11];
}

static int
uscc_value(char c)
{
	const char *p = strchr(uscc_alphabet, c);

	return p == NULL ? 0 : (int)(p - uscc_alphabet);
}

static char
uscc_check(const char *c17)
{
	static const int w[17] = { 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13,
		8, 24, 10, 30, 28 };
	int sum = 0;

	for (int i = 0; i < 17; i++)
		sum += uscc_value(c17[i]) * w[i];
	return uscc_alphabet[(31 - sum % 31) % 31];
}

/* GB 11714 organisation code check, on the 8-character body. */
static char
org_check(const char *b8)
{
	static const int w[8] = { 3, 7, 9, 10, 5, 8, 4, 2 };
	int sum = 0, c;

	for (int i = 0; i < 8; i++) {
		int v = b8[i] >= 'A' ? b8[i] - 'A' + 10 : b8[i] - '0';
		sum += v * w[i];
	}
	c = 11 - sum % 11;
	return c == 10 ? 'X' : c == 11 ? '0' : (char)('0' + c);
}

static char
luhn_check(const char *digits, size_t n)
{
	int sum = 0;

	for (size_t i = 0; i < n; i++) {
		int d = digits[n - 1 - i] - '0';
		if (i % 2 == 0) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return (char)('0' + (10 - sum % 10) % 10);
}

static int
vin_value(char c)
{
	static const char letters[] = "ABCDEFGHJKLMNPRSTUVWXYZ";
	static const int values[] = { 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7,
		9, 2, 3, 4, 5, 6, 7, 8, 9 };
	const char *p;

	if (c >= '0' && c <= '9')
		return c - '0';
	p = strchr(letters, c);
	return p == NULL ? 0 : values[p - letters];
}

static void
make_vin(struct rng *r, const char *wmi, int year, char vin[18])
{
	static const char alnum[] = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
	static const char years[] = "ABCDEFGHJKLMNPRSTVWXY123456789";
	static const int w[17] = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4,
		3, 2 };
	int sum = 0;

	memcpy(vin, wmi, 3);
	for (int i = 3; i < 8; i++)
		vin[i] = alnum[below(r, sizeof(alnum) - 1)];
	vin[8] = '0';
	vin[9] = years[(year - 2010) % 30]; /* 2010 = A */
	vin[10] = alnum[below(r, 10)];
	for (int i = 11; i < 17; i++)
		vin[i] = (char)('0' + below(r, 10));
	for (int i = 0; i < 17; i++)
		sum += vin_value(vin[i]) * w[i];
	vin[8] = sum % 11 == 10 ? 'X' : (char)('0' + sum % 11);
	vin[17] = '\0';
}

/* ---- building blocks -------------------------------------------------- */

static void
make_name(struct rng *r, const char *surname, char *out, size_t outlen)
{
	if (below(r, 3) == 0)
		snprintf(out, outlen, "%s%s", surname, PICK(r, given));
	else
		snprintf(out, outlen, "%s%s%s", surname, PICK(r, given),
		    PICK(r, given));
}

static void
make_address(struct rng *r, const struct region *rg, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%u号%u栋%u房", rg->name, PICK(r, streets),
	    below(r, 999) + 1, below(r, 30) + 1,
	    (below(r, 30) + 1) * 100 + below(r, 8) + 1);
}

static int64_t
balance(struct rng *r)
{
	uint32_t p = below(r, 100);

	if (p < 20)
		return between(r, 0, 10000); /* up to 100 yuan */
	if (p < 70)
		return between(r, 100000, 10000000); /* 1k..100k yuan */
	if (p < 95)
		return between(r, 10000000, 100000000);
	return between(r, 100000000, 1000000000);
}

/* kind: '1' person, '2' enterprise; unique by construction. */
static void
make_account(struct rng *r, const struct sim_subject *s, int bank, int k,
    const struct region *rg, struct sim_account *a)
{
	char body[19];
	uint32_t p = below(r, 100);

	snprintf(body, sizeof(body), "%s%c%07u%d%03u", sim_banks[bank].bin,
	    s->enterprise ? '2' : '1', s->index, k, below(r, 1000));
	snprintf(a->no, sizeof(a->no), "%s%c", body, luhn_check(body, 18));
	a->bank = bank;
	a->type = s->enterprise || below(r, 5) != 0 ? "demand" : "time";
	ck_strlcpy(a->currency,
	    p < 85 || s->enterprise ? "CNY"
		: p < 95	    ? "USD"
				    : "HKD",
	    sizeof(a->currency));
	a->balance_fen = balance(r);
	snprintf(a->branch, sizeof(a->branch), "%s%s支行", rg->city,
	    PICK(r, streets));
}

static void
make_property(struct rng *r, const struct sim_subject *s, int k,
    const struct region *rg, struct sim_property *p)
{
	static const char *const usages[] = { "residential", "residential",
		"residential", "residential", "commercial", "office",
		"parking" };

	snprintf(p->unit_id, sizeof(p->unit_id), "%s%03u%03uGB%04u%dF%c%07u",
	    rg->code, below(r, 1000), below(r, 1000), below(r, 10000), k,
	    s->enterprise ? '2' : '1', s->index);
	snprintf(p->certificate_no, sizeof(p->certificate_no),
	    "%s(%u)%s市不动产权第%07u号", rg->cert,
	    (unsigned)between(r, 2016, 2024), rg->city, below(r, 10000000));
	make_address(r, rg, p->address, sizeof(p->address));
	p->usage = s->enterprise ? "commercial" : PICK(r, usages);
	p->area_cm2 = strcmp(p->usage, "parking") == 0
	    ? between(r, 100000, 150000)
	    : between(r, 400000, 2000000);
	p->share_percent = below(r, 4) == 0 ? 50 : 100;
}

static void
make_vehicle(struct rng *r, const struct sim_subject *s, int k,
    const struct region *rg, int min_year, struct sim_vehicle *v)
{
	static const char plate_chars[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
	const struct model *m = &PICK(r, models);
	int year = (int)between(r, min_year, 2023);
	char tail[6];

	snprintf(v->id, sizeof(v->id), "V%c%07u%d", s->enterprise ? '2' : '1',
	    s->index, k);
	for (int i = 0; i < 5; i++)
		tail[i] = i < 2 && below(r, 3) == 0
		    ? plate_chars[10 + below(r, sizeof(plate_chars) - 11)]
		    : (char)('0' + below(r, 10));
	tail[5] = '\0';
	snprintf(v->plate, sizeof(v->plate), "%s%s", rg->plate, tail);
	make_vin(r, m->wmi, year, v->vin);
	v->make_model = m->name;
	v->registered_on.year = year;
	v->registered_on.month = (int)between(r, 1, 12);
	v->registered_on.day = (int)between(r, 1, 28);
}

/* ---- persons and enterprises ------------------------------------------ */

static void
person_from_id(struct sim_subject *s)
{
	s->sex = (s->id[16] - '0') % 2 == 1 ? 'M' : 'F';
	s->birth.year = (s->id[6] - '0') * 1000 + (s->id[7] - '0') * 100 +
	    (s->id[8] - '0') * 10 + (s->id[9] - '0');
	s->birth.month = (s->id[10] - '0') * 10 + (s->id[11] - '0');
	s->birth.day = (s->id[12] - '0') * 10 + (s->id[13] - '0');
}

static void
draw_resident_id(struct rng *r, const struct region *rg, char id[20])
{
	struct ck_date d;
	/* 1950-01-01 .. 2005-12-31: adults on any plausible clock */
	int64_t day = between(r, -7305, 13148);

	ck_date_from_days(day, &d);
	snprintf(id, 20, "%s%04d%02d%02d%03u", rg->code, d.year, d.month, d.day,
	    below(r, 1000));
	id[17] = resident_check(id);
	id[18] = '\0';
}

static void
draw_uscc(struct rng *r, const struct region *rg, char id[20])
{
	static const char body_chars[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

	id[0] = '9';
	id[1] = '1';
	memcpy(id + 2, rg->code, 6);
	for (int i = 8; i < 16; i++)
		id[i] = i < 10 || below(r, 4) != 0
		    ? (char)('0' + below(r, 10))
		    : body_chars[10 + below(r, sizeof(body_chars) - 11)];
	id[16] = org_check(id + 8);
	id[17] = uscc_check(id);
	id[18] = '\0';
}

/* Distinct bank slots for n accounts. */
static void
pick_banks(struct rng *r, int *out, size_t n)
{
	int order[SIM_NBANKS];

	for (int i = 0; i < SIM_NBANKS; i++)
		order[i] = i;
	for (int i = SIM_NBANKS - 1; i > 0; i--) {
		int j = (int)below(r, (uint32_t)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = order[i];
}

static void
unique_plate(struct sim_population *pop, struct rng *r, struct sim_subject *s,
    int k, const struct region *rg, int min_year)
{
	struct sim_vehicle *v = &s->vehicles[k];

	do
		make_vehicle(r, s, k, rg, min_year, v);
	while (table_find(&pop->plates, v->plate)->key != NULL);
	table_put(&pop->plates, v->plate, s, k);
}

static void
make_person(struct sim_population *pop, struct sim_subject *s)
{
	struct rng r;
	const struct region *rg;
	int banks[SIM_NBANKS];
	uint32_t p;

	rng_init(&r, pop->seed, 'P', s->index);
	rg = &PICK(&r, regions);
	do
		draw_resident_id(&r, rg, s->id);
	while (table_find(&pop->ids, s->id)->key != NULL);
	person_from_id(s);
	make_name(&r, PICK(&r, surnames), s->name, sizeof(s->name));
	make_address(&r, rg, s->address, sizeof(s->address));
	s->nmembers = below(&r, SIM_MAX_MEMBERS + 1);
	for (size_t i = 0; i < s->nmembers; i++) {
		char surname[8];

		/* a spouse with her or his own surname, then children */
		ck_strlcpy(surname, i == 0 ? PICK(&r, surnames) : s->name,
		    strlen(surnames[0]) + 1);
		make_name(&r, surname, s->members[i], sizeof(s->members[i]));
	}

	p = below(&r, 100);
	s->naccounts = p < 15 ? 0 : p < 50 ? 1 : p < 80 ? 2 : 3;
	pick_banks(&r, banks, s->naccounts);
	for (size_t i = 0; i < s->naccounts; i++)
		make_account(&r, s, banks[i], (int)i, rg, &s->accounts[i]);
	p = below(&r, 100);
	s->nproperties = p < 50 ? 0 : p < 90 ? 1 : 2;
	for (size_t i = 0; i < s->nproperties; i++)
		make_property(&r, s, (int)i, rg, &s->properties[i]);
	p = below(&r, 100);
	s->nvehicles = p < 55 ? 0 : p < 90 ? 1 : 2;
	for (size_t i = 0; i < s->nvehicles; i++)
		unique_plate(pop, &r, s, (int)i, rg,
		    s->birth.year + 18 > 2012 ? s->birth.year + 18 : 2012);
}

static void
make_enterprise(struct sim_population *pop, struct sim_subject *s)
{
	static const char *const statuses[] = { "active", "active", "active",
		"active", "active", "active", "active", "active", "revoked",
		"deregistered" };
	struct rng r;
	const struct region *rg;
	int banks[SIM_NBANKS];
	int64_t left;

	rng_init(&r, pop->seed, 'E', s->index);
	s->enterprise = true;
	rg = &PICK(&r, regions);
	do
		draw_uscc(&r, rg, s->id);
	while (table_find(&pop->ids, s->id)->key != NULL);
	snprintf(s->name, sizeof(s->name), "%s%s%s有限公司", rg->city,
	    PICK(&r, brands), PICK(&r, trades));
	make_address(&r, rg, s->address, sizeof(s->address));
	s->status = PICK(&r, statuses);
	/* the legal representative is one of the persons */
	ck_strlcpy(s->legal_rep,
	    pop->persons[below(&r, (uint32_t)pop->npersons)].name,
	    sizeof(s->legal_rep));
	s->capital_fen = between(&r, 10, 10000) * 10000000; /* 100k yuan */
	s->nholders = 1 + below(&r, SIM_MAX_SHAREHOLDERS);
	left = s->capital_fen;
	for (size_t i = 0; i < s->nholders; i++) {
		int64_t part = i + 1 == s->nholders
		    ? left
		    : left / 100 * between(&r, 20, 60);

		if (i == 0)
			ck_strlcpy(s->holders[i].name, s->legal_rep,
			    sizeof(s->holders[i].name));
		else
			make_name(&r, PICK(&r, surnames), s->holders[i].name,
			    sizeof(s->holders[i].name));
		s->holders[i].subscribed_fen = part;
		left -= part;
	}
	ck_date_from_days(between(&r, 9131, 19722), &s->established);
	s->naccounts = 1 + below(&r, 2);
	pick_banks(&r, banks, s->naccounts);
	for (size_t i = 0; i < s->naccounts; i++)
		make_account(&r, s, banks[i], (int)i, rg, &s->accounts[i]);
	s->nproperties = below(&r, 10) < 3 ? 1 : 0;
	for (size_t i = 0; i < s->nproperties; i++)
		make_property(&r, s, (int)i, rg, &s->properties[i]);
	s->nvehicles = below(&r, 10) < 3 ? 1 + below(&r, 2) : 0;
	for (size_t i = 0; i < s->nvehicles; i++)
		unique_plate(pop, &r, s, (int)i, rg, 2012);
}

/*
 * The demo subjects, fixed by hand over what the generator drew for
 * index 0 (so the rest of the world does not shift).
 */
static void
make_demo_person(struct sim_population *pop, struct sim_subject *s)
{
	static const struct {
		int bank;
		const char *cur;
		int64_t fen;
	} accts[] = {
		{ 0, "CNY", 123456789 }, /* ICBC 1,234,567.89 */
		{ 3, "CNY", 5000000 },	 /* CCB 50,000.00 */
		{ 5, "USD", 300000 },	 /* CMB USD 3,000.00 */
	};
	struct rng r;

	rng_init(&r, 0, 'D', 0); /* the same for every seed */
	memset(s, 0, sizeof(*s));
	ck_strlcpy(s->id, "11010519491231002X", sizeof(s->id));
	person_from_id(s);
	ck_strlcpy(s->name, "张三", sizeof(s->name));
	ck_strlcpy(
	    s->address, "北京市朝阳区建国路88号1栋1201房", sizeof(s->address));
	ck_strlcpy(s->members[0], "李四", sizeof(s->members[0]));
	ck_strlcpy(s->members[1], "张小三", sizeof(s->members[1]));
	s->nmembers = 2;
	s->naccounts = CK_ARRAY_SIZE(accts);
	for (size_t i = 0; i < s->naccounts; i++) {
		make_account(&r, s, accts[i].bank, (int)i, &regions[10],
		    &s->accounts[i]);
		ck_strlcpy(s->accounts[i].currency, accts[i].cur,
		    sizeof(s->accounts[i].currency));
		s->accounts[i].type = "demand";
		s->accounts[i].balance_fen = accts[i].fen;
	}
	s->nproperties = 1;
	make_property(&r, s, 0, &regions[0], &s->properties[0]);
	ck_strlcpy(s->properties[0].address,
	    "广东省广州市天河区天河路385号2栋1502房",
	    sizeof(s->properties[0].address));
	s->properties[0].usage = "residential";
	s->properties[0].area_cm2 = 1285000; /* 128.5 m² */
	s->properties[0].share_percent = 100;
	s->nvehicles = 1;
	make_vehicle(&r, s, 0, &regions[0], 2019, &s->vehicles[0]);
	ck_strlcpy(
	    s->vehicles[0].plate, "粤A12345", sizeof(s->vehicles[0].plate));
	s->vehicles[0].registered_on =
	    (struct ck_date){ .year = 2019, .month = 6, .day = 18 };
	table_put(&pop->plates, s->vehicles[0].plate, s, 0);
}

static void
make_demo_enterprise(struct sim_population *pop, struct sim_subject *s)
{
	struct rng r;

	rng_init(&r, 0, 'D', 1);
	memset(s, 0, sizeof(*s));
	s->enterprise = true;
	ck_strlcpy(s->id, "91110000600037341L", sizeof(s->id));
	ck_strlcpy(s->name, "北京长城示范实业有限公司", sizeof(s->name));
	ck_strlcpy(
	    s->address, "北京市朝阳区建国门外大街1号", sizeof(s->address));
	s->status = "active";
	ck_strlcpy(s->legal_rep, "张三", sizeof(s->legal_rep));
	s->capital_fen = 5000000000; /* 50,000,000.00 yuan */
	s->nholders = 2;
	ck_strlcpy(s->holders[0].name, "张三", sizeof(s->holders[0].name));
	s->holders[0].subscribed_fen = 3000000000;
	ck_strlcpy(s->holders[1].name, "李四", sizeof(s->holders[1].name));
	s->holders[1].subscribed_fen = 2000000000;
	s->established =
	    (struct ck_date){ .year = 1996, .month = 3, .day = 15 };
	s->naccounts = 2;
	make_account(&r, s, 2, 0, &regions[10], &s->accounts[0]);
	s->accounts[0].balance_fen = 880000000; /* 8,800,000.00 */
	make_account(&r, s, 4, 1, &regions[10], &s->accounts[1]);
	s->accounts[1].balance_fen = 12345600;
	s->nproperties = 1;
	make_property(&r, s, 0, &regions[10], &s->properties[0]);
	(void)pop;
}

/* ---- public ----------------------------------------------------------- */

int
sim_bank_by_code(const char *code)
{
	for (int i = 0; i < SIM_NBANKS; i++)
		if (strcmp(sim_banks[i].code, code) == 0)
			return i;
	return -1;
}

int
sim_population_new(uint64_t seed, uint32_t size, struct sim_population **out)
{
	struct sim_population *pop;
	size_t nacc = 0, off = 0;
	int rv = CK_ENOMEM;

	*out = NULL;
	if (size < 1 || size > 1000000)
		return CK_EINVAL;
	pop = calloc(1, sizeof(*pop));
	if (pop == NULL)
		return CK_ENOMEM;
	pop->seed = seed;
	pop->npersons = size;
	pop->nenterprises = size / 5 + 1;
	pop->persons = calloc(pop->npersons, sizeof(*pop->persons));
	pop->enterprises = calloc(pop->nenterprises, sizeof(*pop->enterprises));
	if (pop->persons == NULL || pop->enterprises == NULL)
		goto fail;
	if ((rv = table_init(&pop->ids, pop->npersons + pop->nenterprises)) ||
	    (rv = table_init(&pop->plates,
		 (pop->npersons + pop->nenterprises) * SIM_MAX_VEHICLES)) ||
	    (rv = table_init(&pop->accounts,
		 (pop->npersons + pop->nenterprises) * SIM_MAX_ACCOUNTS)))
		goto fail;

	/* the demo ids first, so no drawn id can take them */
	make_demo_person(pop, &pop->persons[0]);
	table_put(&pop->ids, pop->persons[0].id, &pop->persons[0], 0);
	make_demo_enterprise(pop, &pop->enterprises[0]);
	pop->enterprises[0].index = 0;
	table_put(&pop->ids, pop->enterprises[0].id, &pop->enterprises[0], 0);
	for (size_t i = 1; i < pop->npersons; i++) {
		struct sim_subject *s = &pop->persons[i];

		s->index = (uint32_t)i;
		make_person(pop, s);
		table_put(&pop->ids, s->id, s, 0);
	}
	for (size_t i = 1; i < pop->nenterprises; i++) {
		struct sim_subject *s = &pop->enterprises[i];

		s->index = (uint32_t)i;
		make_enterprise(pop, s);
		table_put(&pop->ids, s->id, s, 0);
	}

	/* "slot:account_no" keys, in one block */
	for (size_t i = 0; i < pop->npersons; i++)
		nacc += pop->persons[i].naccounts;
	for (size_t i = 0; i < pop->nenterprises; i++)
		nacc += pop->enterprises[i].naccounts;
	pop->account_keys = malloc(nacc * 32 + 1);
	if (pop->account_keys == NULL) {
		rv = CK_ENOMEM;
		goto fail;
	}
	for (int e = 0; e < 2; e++) {
		struct sim_subject *arr = e ? pop->enterprises : pop->persons;
		size_t n = e ? pop->nenterprises : pop->npersons;

		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < arr[i].naccounts; k++) {
				char *key = pop->account_keys + off;

				snprintf(key, 32, "%d:%s",
				    arr[i].accounts[k].bank,
				    arr[i].accounts[k].no);
				table_put(&pop->accounts, key, &arr[i], (int)k);
				off += 32;
			}
	}
	*out = pop;
	return 0;
fail:
	sim_population_free(pop);
	return rv;
}

int
sim_population_grant_account(struct sim_population *pop, const char *id,
    int bank, int64_t balance_fen, const struct sim_account **acct)
{
	const struct slot *sl = table_find(&pop->ids, id);
	struct sim_subject *s;
	struct sim_account *a;
	char body[19], *key;

	if (sl->key == NULL)
		return CK_ENOTFOUND;
	s = (struct sim_subject *)sl->s;	/* ours: persons/enterprises */
	if (s->naccounts >= SIM_MAX_ACCOUNTS + SIM_MAX_GRANTED ||
	    pop->ngrants >= SIM_MAX_GRANTS)
		return CK_ELIMIT;
	a = &s->accounts[s->naccounts];
	memset(a, 0, sizeof(*a));
	/* the generator's layout with slot k = naccounts (unused by this
	 * subject) and serial 999: unique */
	snprintf(body, sizeof(body), "%s%c%07u%d999", sim_banks[bank].bin,
	    s->enterprise ? '2' : '1', s->index, (int)s->naccounts);
	snprintf(a->no, sizeof(a->no), "%s%c", body, luhn_check(body, 18));
	a->bank = bank;
	a->type = "demand";
	ck_strlcpy(a->currency, "CNY", sizeof(a->currency));
	a->balance_fen = balance_fen;
	ck_strlcpy(a->branch, "开户行营业部", sizeof(a->branch));
	key = pop->grant_keys[pop->ngrants++];
	snprintf(key, 32, "%d:%s", bank, a->no);
	table_put(&pop->accounts, key, s, (int)s->naccounts);
	s->naccounts++;
	*acct = a;
	return 0;
}

void
sim_population_free(struct sim_population *pop)
{
	if (pop == NULL)
		return;
	free(pop->ids.slots);
	free(pop->plates.slots);
	free(pop->accounts.slots);
	free(pop->account_keys);
	free(pop->persons);
	free(pop->enterprises);
	free(pop);
}

size_t
sim_population_persons(const struct sim_population *pop)
{
	return pop->npersons;
}

size_t
sim_population_enterprises(const struct sim_population *pop)
{
	return pop->nenterprises;
}

const struct sim_subject *
sim_population_person(const struct sim_population *pop, size_t i)
{
	return i < pop->npersons ? &pop->persons[i] : NULL;
}

const struct sim_subject *
sim_population_enterprise(const struct sim_population *pop, size_t i)
{
	return i < pop->nenterprises ? &pop->enterprises[i] : NULL;
}

const struct sim_subject *
sim_population_find(const struct sim_population *pop, const char *id)
{
	const struct slot *sl = table_find(&pop->ids, id);

	return sl->key != NULL ? sl->s : NULL;
}

const struct sim_subject *
sim_population_find_account(const struct sim_population *pop, int bank,
    const char *account_no, const struct sim_account **acct)
{
	char key[48];
	const struct slot *sl;

	if (snprintf(key, sizeof(key), "%d:%s", bank, account_no) >=
	    (int)sizeof(key))
		return NULL;
	sl = table_find(&pop->accounts, key);
	if (sl->key == NULL)
		return NULL;
	if (acct != NULL)
		*acct = &sl->s->accounts[sl->aux];
	return sl->s;
}
