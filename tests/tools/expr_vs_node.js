#!/usr/bin/env node
// expr_vs_node.js - differential test of weft's expression evaluator
// against node.
//
// Usage: node expr_vs_node.js PATH/TO/expr_eval
//
// Evaluates a hand-written table of expressions plus a few thousand
// randomly generated ones (fixed seed: deterministic) in node and with
// expr_eval (tests/tools/expr_eval.c) over the same scope, and compares
// one canonical line per expression: "number:<String(n)>",
// "string:<JSON>", "array:<JSON>", "object:<JSON>", "boolean:true",
// "undefined", "null" or "error:<class>". Exits 1 on any mismatch.
//
// The node scope mirrors the seed's WorkflowContext: context.state and
// context.personaResults are Maps that also expose their entries as
// properties (what weft's JSON objects stand for); everything else is
// plain JSON. Only expressions inside weft's subset are generated (see
// docs/expressions.md); in particular get/has are called on the Maps only,
// no prototype member names are read, strings with characters outside
// the BMP are not indexed, and array literals hold literals only.
'use strict';

const cp = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');

const SCOPE = {
  task: {
    type: 'hotfix',
    slug: 'fix-login',
    project: 'weft',
    priority: 'high',
    title: 'Fix the login: caf\u00e9 \u00bd',
    emoji: 'x\u{1F600}y',
    pua: '\uE000',
    count: 3,
    ratio: 0.25,
    big: 1e21,
    neg: -7,
    zero: 0,
    numstr: '42',
    spaced: ' 17 ',
    hexstr: '0x1f',
    empty: '',
    flag: true,
    off: false,
    nothing: null,
    tags: ['backend', 'urgent', 'p1'],
    nums: [1, 2, 3, 0],
    mixed: [1, 'a', null, true, [2, 3]],
    single: [7],
    none: [],
    nested: { deep: { value: 'found', list: [{ id: 'x1' }, { id: 'x2' }] } },
  },
  variables: {
    project_name: 'weft',
    branch_prefix: 'feat/',
    timeout_base: 1800,
    max_retries: 3,
    timeout_minutes: 30,
    threshold: 0.5,
  },
  steps: {
    planning: { status: 'done', result: { summary: 'plan ok', score: 8 } },
    'plan-evaluation': { status: 'done', result: { summary: 'approved', passed: true } },
    qa: { status: 'failed', result: { errors: 2 } },
  },
  context: {
    workflowId: 'wf-1',
    repoRoot: '/srv/repo',
    branchName: 'feat/fix-login',
    baseBranch: 'main',
    artifacts: ['plan.md', 'diff.patch'],
    state: {
      planning_result: { approved: true, steps: 4 },
      qa_status: 'pass',
      attempts: 2,
      notes: '',
      blocked: false,
      missing_value: null,
    },
    personaResults: {
      'qa-engineer': { status: 'pass', score: 0.9 },
      'code-reviewer': { status: 'changes', comments: ['nit', 'typo'] },
    },
  },
};

// ---------------------------------------------------------------------------
// The hand-written table: seed conditions, each operator, conversions,
// chains, methods, errors. Expectations come from node itself.
const TABLE = [
  // The seed's conditions and template paths.
  "context.state.get('planning_result')",
  "context.state.get('qa_status') === 'pass'",
  "task.type === 'hotfix'",
  "task.type !== 'hotfix'",
  'variables.branch_prefix + task.slug',
  'variables.timeout_base',
  'task.project',
  "steps['plan-evaluation'].result.summary",
  // Literals.
  '0', '1', '-1', '1.5', '.5', '5.', '1e3', '1E3', '1e-7', '1.5e-7', '1e21', '1e20', '123456789012345680000',
  '0.1', '0.000001', '0.0000001', '1.7976931348623157e308', '5e-324', '1e400', '2e-400',
  '0x1F', '0XfF', '0o17', '0O7', '0b101', '0B11', '0x1fffffffffffff1', '0x20000000000001', '0x20000000000003',
  '1_000', '1_000.5', '0x_1', '1__0', '1_', '01', '08', '0_1', '3in', '5x', '0b12', '0x', '1e', '1e+',
  "'a'", '"b"', "''", "'it\\'s'", '"say \\"hi\\""', "'\\n\\t\\r\\b\\f\\v'", "'\\x41'", "'\\u0041'", "'\\u{1F600}'",
  "'\\uD83D\\uDE00'", "'\\0'", "'\\q'", "'\\\\'", "'caf\u00e9'", "'\u00e9'.length",
  "'\\x4'", "'\\u12'", "'\\u{110000}'", "'\\1'", "'\\01'", "'abc", '"abc', "'a\\",
  'true', 'false', 'null', 'undefined', 'NaN', 'Infinity', '-Infinity',
  '[]', '[1]', "[1, 'a']", "[1, 'a', ]", '[[1, 2], [3]]', '[true, null]', '[1', '[1 2]',
  // Arithmetic.
  '1 + 2', '1 + 2 * 3', '(1 + 2) * 3', '10 - 4 - 3', '2 * 3 % 4', '7 % 3', '-7 % 3', '7 % -3', '5.5 % 2',
  '1 / 0', '-1 / 0', '0 / 0', '1 / -0', '-0', '-(-0)', '0 * -1', '-0 + 0', '0.1 + 0.2', '0.1 * 3', '1 / 3',
  '2 / 3', '100 / 7', '1e21 + 1', '1 % 0', 'Infinity % 2', '5 % Infinity', '-0 % 5',
  "'3' * '4'", "'3' - 1", "'3' + 1", "1 + '3'", "'a' - 1", "'' - 1", "' ' * 1", "'\\n' * 1", "null + 1",
  'undefined + 1', 'true + true', 'true + 1', "true + 'x'", "null + 'x'", "undefined + 'x'", '[] + []',
  '[] + 1', '[1] + 1', '[1, 2] + 1', '[1] * 2', '[1, 2] * 2', '[] * 2', "[[]] * 2", "[null] * 3",
  'task + 1', "task + ''", 'task * 1', "task.tags + ''", 'task.nums + 1', 'task.mixed + 1', 'task.none - 1',
  '+true', '+null', '+undefined', "+''", "+'  12  '", "+'1e3'", "+'.5'", "+'5.'", "+'+5'", "+'-5'",
  "+'- 5'", "+'0x10'", "+'0X10'", "+'-0x10'", "+'0b101'", "+'0o17'", "+'0b2'", "+'0x'", "+'Infinity'",
  "+'-Infinity'", "+'+Infinity'", "+'infinity'", "+'inf'", "+'nan'", "+'1_000'", "+'12px'", "+'1e'",
  "+'e5'", "+'.'", "+'1.2.3'", "+'\\u00a0 8 \\u2028'", "+'\\ufeff9'", "+'\\u3000 7'", "+'\\t\\n\\v\\f\\r 6'",
  "+'00012'", "+'-0'", "+'0.0000001'", "+'123456789012345678901234567890'", '+[]', '+[5]', "+['5']",
  '+[1, 2]', '+task', '-task.numstr', '-task.spaced', '+task.hexstr', '-task.empty', '- -1', '-(-1)',
  '+-+1', '!!task', '!task.zero', '!task.empty', '!task.nothing', '!!task.none', '!!NaN', '!!-0',
  '!!\'0\'', "!!' '",
  // Number formatting.
  '1e21 / 10', '1e-6', '1e-7 * 10', '123e-20', '9007199254740993', '9007199254740992 + 1',
  '0.1 + 0.7', '1 / 7', '100', '1e2', '12345678901234567890', '0.000123', '1.0', '-1.25e-10', '4.35',
  '0.5e-6', '255 / 256', '1e300 * 1e10', '-1e300 * 1e10', '3 * 1.1', '5e-7', '1.23e+25',
  // Comparison.
  '1 < 2', '2 < 1', '1 <= 1', '1 >= 2', '2 > 1', "'a' < 'b'", "'B' < 'a'", "'a' < 'aa'", "'' < 'a'",
  "'10' < '9'", "'10' < 9", "10 < '9'", "'x' < 1", "'x' >= 1", 'NaN < 1', 'NaN >= NaN', 'null < 1',
  'null >= 0', 'undefined < 1', 'undefined >= 0', 'true > false', "[2] > 1", "[1, 2] < '1,3'",
  "task < task", "task <= task", "'\\uffff' < '\\u{1F600}'", "'\\u{1F600}' < '\\uffff'", "'\\uE000' < '\\u{10000}'",
  "task.emoji < task.pua", "task.pua < task.emoji", "'\\u{1F600}' < '\\u{1F601}'", "'\u00e9' > 'z'",
  "'a\\u0000' > 'a'", "'abc' <= 'abd'", "'abc' >= 'abc'", 'Infinity > 1e308', '-0 < 0', '-0 <= 0',
  // Equality.
  '1 === 1', "1 === '1'", '1 == 1', "1 == '1'", "0 == ''", "0 == '0'", "'' == '0'", "0 == ' \\t'",
  'null == undefined', 'null === undefined', 'null == 0', 'undefined == 0', 'null == false', 'undefined == false',
  "false == 'false'", "false == '0'", "true == '1'", 'true == 1', 'true == 2', 'NaN == NaN', 'NaN !== NaN',
  '-0 === 0', '[] == false', '[0] == false', "[1] == '1'", "[1, 2] == '1,2'", '[1] == 1', '[] == 0',
  "[] == ''", "[null] == ''", "task == '[object Object]'", 'task == task', 'task === task', '[] == []',
  '[1] === [1]', 'task.tags === task.tags', "task.tags == 'backend,urgent,p1'", 'task.nums == task.nums',
  "context.state.get('planning_result') === context.state.planning_result",
  "context.state.get('planning_result') == context.state.get('planning_result')", 'task == 1', 'task != null',
  "task.nothing == null", "task.nothing === null", 'task.nope == null', 'task.nope === undefined',
  "1 != '1'", "1 !== '1'", "'a' != 'a'", 'true != 1', "null != undefined",
  // Logical and conditional.
  '1 && 2', '0 && 2', "'' || 'x'", "'a' || 'x'", 'null ?? 5', 'undefined ?? 5', '0 ?? 5', "'' ?? 5",
  'false ?? 5', 'task.nope ?? task.type', 'task.nothing ?? 0', 'task.zero || 10', 'task.zero ?? 10',
  '!0', '!1', '!!1', 'true ? 1 : 2', 'false ? 1 : 2', "0 ? 'a' : 'b'", "'' ? 'a' : 'b'",
  "task.flag ? 'yes' : 'no'", "task.off ? 'yes' : task.count > 2 ? 'many' : 'few'",
  '1 ? 2 ? 3 : 4 : 5', 'null ?? (1 || 2)', '(null ?? 1) || 2', '(1 && null) ?? 2', '1 && (null ?? 2)',
  '1 ?? 2 || 3', '1 || 2 ?? 3', '1 && 2 ?? 3', '1 ?? 2 && 3', 'a?.5:1', 'task.flag?.5:1',
  'nope && 1', '0 && nope', '1 || nope', 'task ?? nope', 'task.nothing ?? nope', 'true ? 1 : nope',
  // Members and optional chaining.
  'task.type', "task['type']", 'task["slug"]', 'task.tags[0]', "task.tags['1']", 'task.tags[2]',
  'task.tags[3]', 'task.tags[-1]', 'task.tags[1.0]', 'task.tags[1.5]', "task.tags['01']", 'task.tags.length',
  "task.tags['length']", 'task.type.length', 'task.title.length', 'task.emoji.length', 'task.pua.length',
  'task.empty.length', 'task.type[0]', 'task.type[6]', "task.type['2']", 'task.title[14]', 'task.count.length',
  'task.flag.x', 'task.nested.deep.value', 'task.nested.deep.list[1].id', 'task.nested.deep.list.length',
  'task.nested["deep"]["value"]', 'task[task.tags[0]]', "task['ty' + 'pe']", 'task[1]', 'task.mixed[4][1]',
  'task.nope', 'task.nope.x', 'task.nothing.x', 'task.nope[0]', 'task.nothing[0]', 'task.nope?.x',
  'task.nothing?.x', 'task.nope?.x.y.z', 'task.nope?.[0]', 'task.nope?.[nope]', 'task?.type', 'task.nope?.x === undefined',
  '(task.nope?.x).y', 'task.nope?.x.y', 'task.tags?.[1]', 'task.tags?.length', 'task?.nested?.deep?.value',
  "task?.['type']", 'nope?.x', 'nope.x', 'nope', 'missing_var + 1', 'task.nope[nope]', 'task.type[nope]',
  'task.', 'task..type', 'task.1', 'task[', 'task[1', 'task[]', 'task?.', 'task?.1', '.type',
  'context.state.qa_status', "context.state['qa_status']", 'context.state.nope', 'context.state.length',
  'context.artifacts.length', 'context.artifacts[1]', 'context.repoRoot', 'steps.planning.result.score',
  'steps.qa.result.errors > 0', 'steps["plan-evaluation"].result.passed', 'steps.nope?.result',
  'steps.nope.result', "context.personaResults.get('qa-engineer').status",
  "context.personaResults.get('code-reviewer').comments[1]", "context.personaResults.has('qa-engineer')",
  "context.personaResults.has('nope')", "context.personaResults.get('nope')?.status",
  "context.personaResults.get('nope').status",
  // Methods.
  "context.state.get('qa_status')", "context.state.get('nope')", "context.state.has('qa_status')",
  "context.state.has('nope')", "context.state.has('missing_value')", "context.state.get('missing_value')",
  'context.state.get(1)', 'context.state.get()', 'context.state.has()', "context.state.get('qa_status', 2)",
  "context.state.get('planning_result').approved", "context.state.get('attempts') + 1",
  "context.state.get('notes') || 'none'", "context.state.get('blocked') === false",
  "context.state.get('nope')?.x", "context.state.get('nope').x", "context.state?.get('qa_status')",
  "context.nope?.get('x')", "context.nope.get('x')", "context.state['get']('qa_status')",
  "task.type.includes('fix')", "task.type.includes('xyz')", "task.type.includes('')", 'task.type.includes()',
  "task.type.includes('hot', 1)", "task.type.includes('fix', -5)", "task.type.includes('fix', 100)",
  "task.type.includes('fix', NaN)", "task.type.includes('fix', '3')", "task.type.includes('fix', Infinity)",
  "task.type.startsWith('hot')", "task.type.startsWith('fix')", "task.type.startsWith('fix', 3)",
  "task.type.startsWith('', 99)", "task.type.startsWith('hot', -1)", "task.type.startsWith('t', 2.9)",
  "task.type.endsWith('fix')", "task.type.endsWith('hot', 3)", "task.type.endsWith('hot', 3.5)",
  "task.type.endsWith('fix', 100)", "task.type.endsWith('', 0)", "task.type.endsWith('hot', -1)",
  "task.type.endsWith('fix', undefined)", "task.type.endsWith('h', 1)", "task.type.endsWith('x', null)",
  "task.emoji.includes('\\u{1F600}')", "task.emoji.startsWith('y', 3)", "task.emoji.startsWith('y', 2)",
  "task.emoji.endsWith('x', 1)", "task.emoji.endsWith('\\u{1F600}', 3)", "task.emoji.endsWith('x\\u{1F600}', 3)",
  "task.emoji.includes('y', 2)", "task.emoji.includes('y', 4)", "task.title.includes('caf\u00e9')",
  "task.slug.includes('-')", "'a,b'.includes(['a', 'b'])", "'null'.includes(null)", "'undefined'.includes()",
  "'1,2'.startsWith([1, 2])", "'aaa'.includes('aaaa')", "'abababc'.includes('ababc')", "'x[object Object]'.endsWith(task)",
  "task.tags.includes('urgent')", "task.tags.includes('nope')", 'task.nums.includes(2)', "task.nums.includes('2')",
  'task.nums.includes(0)', 'task.nums.includes(-0)', 'task.mixed.includes(null)',
  'task.mixed.includes(undefined)', 'task.mixed.includes(true)', 'task.nums.includes(1, 1)',
  'task.nums.includes(3, -2)', 'task.nums.includes(1, -100)', 'task.nums.includes(0, 4)', 'task.none.includes()',
  "[1, 'a'].includes('a')", '[1, 2, 3].includes(2, 2)', "task.tags.includes('p1', Infinity)",
  "task.tags.includes('backend', -Infinity)", 'task.tags.includes(task.tags[2])',
  "task.type.foo()", "task.foo()", "task.tags.get(0)", "task.count.includes(1)",
  "task.flag.includes(1)", "task.nope.includes('x')", "task.nothing.includes('x')", "task.type.includes(nope)",
  "task.type.foo(nope)", "nope.includes('x')", "task.type.length()", "task.tags.startsWith('a')",
  "context.state.includes('x')", "task()", "task.type()()", "(1)(2)", "'abc'.includes('b')()",
  "task.nope?.includes('x')", "task.nope?.foo()", "task.type?.includes('fix')", "task.nope?.x.includes('y')",
  // Syntax the subset shares with JS, and JS syntax errors.
  '(1)', '((1))', '(1 + 2', '1 + 2)', '()', '1 +', '* 1', '1 2', 'a b', '1 ? 2', '1 ? 2 :',
  '? 1 : 2', '!', '1 === ', '=== 1', "'\\u{}'", '@', '#x', '1 \\ 2',
  '\t1 +\t2 ', '  task.type  ', '\u00a01', '1 ===== 1', '1 !=== 1', 'task.type?.', "task['a'", '[1, 2',
];

// ---------------------------------------------------------------------------
// Random expressions: a seeded PRNG (mulberry32) drives a small grammar
// that stays inside the subset. Every compound is parenthesized, so
// ?? never meets && or || unparenthesized.
function mulberry32(seed) {
  return function rand() {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(0x5eed1234);
const pick = (list) => list[Math.floor(rand() * list.length)];

const NUMBERS = ['0', '1', '2', '3', '7', '10', '42', '255', '1800', '0.5', '0.1', '1.5', '2.25', '1e21', '1e-7',
  '1e300', '0x1F', '0o17', '0b101', '1_000', '.5', 'NaN', 'Infinity', '-1', '-0', '123456789', '3.14159'];
const STRINGS = ["''", "'a'", "'b'", "'abc'", "'hotfix'", "'pass'", "'fix'", "'hot'", "'0'", "'1'", "'10'",
  "'9'", "' 12 '", "'0x10'", "'0b11'", "'0o7'", "'1e3'", "'-5'", "'+5'", "'Infinity'", "'12px'", "'1_0'",
  "'\\t3\\n'", "'\\u00a05'", "'caf\\u00e9'", "'\\uff61'", "'\\u{1F600}'", "'\\uE000'", "'feat/'", "'true'",
  "'null'", "'undefined'", "'[object Object]'", "'1,2'", "'backend'", "'urgent'", "'qa_status'",
  "'planning_result'", "'nope'", "'type'", "'slug'", "'length'", "'.'", "'-'", "'x1'"];
const PATHS = ['task', 'task.type', 'task.slug', 'task.priority', 'task.title', 'task.emoji', 'task.pua',
  'task.count', 'task.ratio', 'task.big', 'task.neg', 'task.zero', 'task.numstr', 'task.spaced', 'task.hexstr',
  'task.empty', 'task.flag', 'task.off', 'task.nothing', 'task.tags', 'task.nums', 'task.mixed', 'task.single',
  'task.none', 'task.nested.deep.value', 'task.nested.deep.list', 'task.nested.deep.list[0].id',
  'task.nope', 'task.nope?.x', 'task.nothing?.x', 'task.nope?.x.y', 'task.tags[0]', 'task.tags[5]',
  'task.tags.length', 'variables.timeout_base', 'variables.branch_prefix', 'variables.threshold',
  'variables.max_retries', "steps['plan-evaluation'].result.summary", 'steps.planning.result.score',
  'steps.qa.status', 'steps.nope?.result', 'context.workflowId', 'context.artifacts', 'context.artifacts.length',
  'context.state.qa_status', 'context.state.attempts', 'context.state.notes', 'context.state.blocked',
  "context.state.get('qa_status')", "context.state.get('planning_result')", "context.state.get('attempts')",
  "context.state.get('notes')", "context.state.get('missing_value')", "context.state.get('nope')",
  "context.state.has('qa_status')", "context.state.has('nope')",
  "context.personaResults.get('qa-engineer')", "context.personaResults.get('qa-engineer').score",
  "context.personaResults.has('code-reviewer')", "context.personaResults.get('nope')?.status"];
// Receivers that may be indexed: none holds a character outside the BMP.
const INDEXABLE = ['task', 'task.tags', 'task.nums', 'task.mixed', 'task.type', 'task.title', 'task.slug',
  'context.state', 'steps', 'task.nested.deep.list', 'context.artifacts'];
// Receivers for includes/startsWith/endsWith: strings and arrays mostly.
const RECEIVERS = ['task.type', 'task.slug', 'task.title', 'task.emoji', 'task.pua', 'task.empty', 'task.numstr',
  'task.tags', 'task.nums', 'task.mixed', 'task.none', 'context.artifacts', "context.state.get('qa_status')",
  "steps['plan-evaluation'].result.summary", 'variables.branch_prefix', "'a,b,c'", "[1, 'a', true, null]"];
const BINARY = ['+', '-', '*', '/', '%', '<', '<=', '>', '>=', '==', '!=', '===', '!==', '&&', '||', '??'];

function genLiteral() {
  const r = rand();
  if (r < 0.35) return pick(NUMBERS);
  if (r < 0.7) return pick(STRINGS);
  if (r < 0.9) return pick(['true', 'false', 'null', 'undefined']);
  const n = Math.floor(rand() * 4);
  const items = [];
  for (let i = 0; i < n; i++) items.push(rand() < 0.5 ? pick(NUMBERS) : pick(STRINGS));
  return '[' + items.join(', ') + ']';
}

function gen(depth) {
  const r = rand();
  if (depth <= 0 || r < 0.25) return rand() < 0.5 ? pick(PATHS) : genLiteral();
  const d = depth - 1;
  if (r < 0.6) return '(' + gen(d) + ' ' + pick(BINARY) + ' ' + gen(d) + ')';
  if (r < 0.68) return pick(['!', '-', '+']) + '(' + gen(d) + ')';
  if (r < 0.75) return '(' + gen(d) + ' ? ' + gen(d) + ' : ' + gen(d) + ')';
  if (r < 0.85) {
    const m = pick(['includes', 'startsWith', 'endsWith']);
    const args = [gen(d)];
    if (rand() < 0.3) args.push(gen(d));
    const recv = rand() < 0.6 ? pick(RECEIVERS) : gen(d);
    return '(' + recv + ').' + m + '(' + args.join(', ') + ')';
  }
  if (r < 0.9) return '(' + gen(d) + ').length';
  if (r < 0.95) return pick(INDEXABLE) + '[' + gen(d) + ']';
  return pick(["context.state.get(", "context.state.has(", "context.personaResults.get("]) + gen(d) + ')';
}

function randomExpressions(count) {
  const out = [];
  while (out.length < count) {
    const e = gen(1 + Math.floor(rand() * 4));
    if (e.length < 1000) out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Node's side.
function toMap(obj) {
  const m = new Map(Object.entries(obj));
  for (const [k, v] of Object.entries(obj)) m[k] = v;
  return m;
}

function nodeScope() {
  const s = JSON.parse(JSON.stringify(SCOPE));
  s.context.state = toMap(s.context.state);
  s.context.personaResults = toMap(s.context.personaResults);
  return s;
}

function canonical(v) {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return 'boolean:' + v;
    case 'number': return 'number:' + String(v);
    case 'string': return 'string:' + JSON.stringify(v);
    case 'object': return (Array.isArray(v) ? 'array:' : 'object:') + JSON.stringify(v);
    default: return 'unsupported:' + typeof v;
  }
}

function nodeEval(ctx, src) {
  try {
    return canonical(vm.runInContext('"use strict";(' + src + '\n)', ctx, { timeout: 1000 }));
  } catch (e) {
    return 'error:' + (e && e.name);
  }
}

function main() {
  const bin = process.argv[2];
  if (!bin) {
    console.error('usage: node expr_vs_node.js PATH/TO/expr_eval');
    process.exit(2);
  }
  const random = randomExpressions(4000);
  const all = TABLE.concat(random);
  for (const e of all) {
    if (/[\n\r\u2028\u2029]/.test(e)) throw new Error('expression with a line break: ' + e);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'expr-vs-node-'));
  const scopeFile = path.join(dir, 'scope.json');
  const exprFile = path.join(dir, 'exprs.txt');
  fs.writeFileSync(scopeFile, JSON.stringify(SCOPE));
  fs.writeFileSync(exprFile, all.join('\n') + '\n');
  let out;
  try {
    out = cp.execFileSync(bin, [scopeFile, exprFile], { maxBuffer: 1 << 28 }).toString('utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const lines = out.split('\n');
  const ctx = vm.createContext(nodeScope());
  let passed = 0;
  let failed = 0;
  const kinds = {};
  all.forEach((src, i) => {
    const want = nodeEval(ctx, src);
    const got = lines[i];
    const kind = want.split(':')[0] + (want.startsWith('error:') ? ':' + want.slice(6) : '');
    kinds[kind] = (kinds[kind] || 0) + 1;
    if (want === got) {
      passed++;
    } else {
      failed++;
      if (failed <= 30) console.log(`MISMATCH ${JSON.stringify(src)}\n  node: ${want}\n  weft: ${got}`);
    }
  });
  console.log('results by kind: ' + JSON.stringify(kinds));
  console.log(`table ${TABLE.length}, random ${random.length}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
