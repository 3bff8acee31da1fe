/*
 * test_sim_population.c: the simulator's synthetic world is deterministic
 * (same seed and size, same world; subject i does not move when the size
 * grows), its identifiers are valid and unique, and the demo subjects are
 * there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "population.h"
#include "validate.h"

static const struct ck_date today = { 2026, 1, 1 };

static void
test_deterministic(void **state)
{
	struct sim_population *a, *b, *c;

	(void)state;
	assert_int_equal(sim_population_new(42, 500, &a), 0);
	assert_int_equal(sim_population_new(42, 500, &b), 0);
	assert_int_equal(sim_population_new(42, 800, &c), 0);
	assert_int_equal(sim_population_persons(a), 500);
	assert_int_equal(sim_population_enterprises(a), 101);
	for (size_t i = 0; i < 500; i++) {
		const struct sim_subject *x = sim_population_person(a, i);
		const struct sim_subject *y = sim_population_person(b, i);
		const struct sim_subject *z = sim_population_person(c, i);

		/* byte for byte, pointers to static strings included */
		assert_memory_equal(x, y, sizeof(*x));
		/* a bigger world keeps the smaller one's subjects */
		assert_string_equal(x->id, z->id);
		assert_string_equal(x->name, z->name);
		assert_int_equal(x->naccounts, z->naccounts);
		if (x->naccounts > 0)
			assert_string_equal(
			    x->accounts[0].no, z->accounts[0].no);
	}
	for (size_t i = 0; i < 101; i++)
		assert_memory_equal(sim_population_enterprise(a, i),
		    sim_population_enterprise(b, i),
		    sizeof(struct sim_subject));
	sim_population_free(a);
	sim_population_free(b);
	sim_population_free(c);
}

static void
test_seed_matters(void **state)
{
	struct sim_population *a, *b;
	size_t same = 0;

	(void)state;
	assert_int_equal(sim_population_new(1, 200, &a), 0);
	assert_int_equal(sim_population_new(2, 200, &b), 0);
	for (size_t i = 1; i < 200; i++)
		same += strcmp(sim_population_person(a, i)->id,
			    sim_population_person(b, i)->id) == 0;
	assert_true(same < 3);
	sim_population_free(a);
	sim_population_free(b);
}

static void
test_valid_and_unique(void **state)
{
	struct sim_population *p;
	char why[CK_WHY_MAX];
	size_t with_accounts = 0, usd = 0, props = 0, cars = 0;

	(void)state;
	assert_int_equal(sim_population_new(7, 3000, &p), 0);
	for (size_t i = 0; i < sim_population_persons(p); i++) {
		const struct sim_subject *s = sim_population_person(p, i);
		char birth[9];

		assert_true(
		    ck_valid_resident_id(s->id, strlen(s->id), &today, why));
		assert_ptr_equal(sim_population_find(p, s->id), s);
		assert_false(s->enterprise);
		/* sex and birth date agree with the id */
		assert_int_equal(s->sex, (s->id[16] - '0') % 2 ? 'M' : 'F');
		snprintf(birth, sizeof(birth), "%04d%02d%02d", s->birth.year,
		    s->birth.month, s->birth.day);
		assert_memory_equal(birth, s->id + 6, 8);
		assert_true(s->name[0] != '\0');
		assert_true(s->naccounts <= SIM_MAX_ACCOUNTS);
		with_accounts += s->naccounts > 0;
		for (size_t k = 0; k < s->naccounts; k++) {
			const struct sim_account *a = &s->accounts[k], *f;

			assert_int_equal(strlen(a->no), 19);
			assert_true(ck_valid_currency(a->currency, 3, why));
			assert_true(a->balance_fen >= 0);
			usd += strcmp(a->currency, "CNY") != 0;
			assert_ptr_equal(
			    sim_population_find_account(p, a->bank, a->no, &f),
			    s);
			assert_ptr_equal(f, a);
			/* one account per bank per person */
			for (size_t j = 0; j < k; j++)
				assert_int_not_equal(
				    s->accounts[j].bank, a->bank);
		}
		for (size_t k = 0; k < s->nproperties; k++) {
			assert_int_equal(strlen(s->properties[k].unit_id), 28);
			assert_true(s->properties[k].area_cm2 > 0);
			props++;
		}
		for (size_t k = 0; k < s->nvehicles; k++) {
			const struct sim_vehicle *v = &s->vehicles[k];

			assert_int_equal(strlen(v->vin), 17);
			assert_true(
			    v->registered_on.year >= s->birth.year + 18);
			assert_true(ck_date_valid(&v->registered_on));
			cars++;
		}
	}
	for (size_t i = 0; i < sim_population_enterprises(p); i++) {
		const struct sim_subject *s = sim_population_enterprise(p, i);
		int64_t sum = 0;

		assert_true(ck_valid_uscc(s->id, strlen(s->id), why));
		assert_ptr_equal(sim_population_find(p, s->id), s);
		assert_true(s->enterprise);
		assert_true(s->naccounts >= 1);
		for (size_t k = 0; k < s->nholders; k++)
			sum += s->holders[k].subscribed_fen;
		assert_int_equal(sum, s->capital_fen);
	}
	/* a plausible mix */
	assert_true(with_accounts > 3000 * 7 / 10);
	assert_true(usd > 0);
	assert_true(props > 1000);
	assert_true(cars > 800);
	assert_null(sim_population_find(p, "110105194912310021"));
	sim_population_free(p);
}

static void
test_demo_subjects(void **state)
{
	struct sim_population *p;
	const struct sim_subject *s;
	char why[CK_WHY_MAX];

	(void)state;
	assert_int_equal(sim_population_new(99, 1, &p), 0);
	s = sim_population_find(p, "11010519491231002X");
	assert_non_null(s);
	assert_string_equal(s->name, "张三");
	assert_true(ck_valid_resident_id(s->id, 18, &today, why));
	assert_true(s->naccounts >= 2);
	assert_int_equal(s->nproperties, 1);
	assert_int_equal(s->nvehicles, 1);
	assert_string_equal(s->vehicles[0].plate, "粤A12345");
	s = sim_population_find(p, "91110000600037341L");
	assert_non_null(s);
	assert_true(s->enterprise);
	assert_true(ck_valid_uscc(s->id, 18, why));
	sim_population_free(p);
	assert_int_not_equal(sim_population_new(1, 0, &p), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_seed_matters),
		cmocka_unit_test(test_valid_and_unique),
		cmocka_unit_test(test_demo_subjects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
