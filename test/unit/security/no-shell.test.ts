// Security: no program is ever run through a shell. Every file under src/ is
// parsed and type-checked with the TypeScript compiler (not grepped, so
// comments saying "no shell" do not count) and must contain:
//   - no `shell:` option other than `shell: false`;
//   - no child_process exec/execSync (they always use a shell);
//   - no string naming /bin/sh or bash, and no `sh -c` / `bash -c`;
//   - no execa template-string calls (execa`...`, $`...`) and no
//     execaCommand/execaCommandSync (they split a command line);
//   - at every execa/execaSync/execaNode call: a file that is not a command
//     line and an argument list whose type is an array of strings.
// The checker is first shown a file with each violation, so it cannot pass
// by seeing nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = join(REPO_ROOT, 'src');

const CHILD_PROCESS_MODULES = new Set(['child_process', 'node:child_process']);
const SHELL_RUNNERS = new Set(['exec', 'execSync']);
const EXECA_RUNNERS = new Set(['execa', 'execaSync', 'execaNode']);
/** Every way src/ starts a program: child_process.spawn (through util/spawn-capture.ts) and execa. */
const PROCESS_RUNNERS = new Set([...EXECA_RUNNERS, 'spawn', 'spawnCapture']);
const EXECA_FORBIDDEN = new Set(['execaCommand', 'execaCommandSync', '$']);
const SHELL_TEXT = [/\/bin\/(ba|da|z)?sh\b/, /(^|[\s'"`])(ba|da|z)?sh\s+-c\b/, /\bbash\b/];

interface Finding {
  file: string;
  line: number;
  what: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((entry) => entry.endsWith('.ts') && !entry.endsWith('.d.ts'))
    .map((entry) => join(dir, entry))
    .sort();
}

function compilerOptions(): ts.CompilerOptions {
  const configPath = join(REPO_ROOT, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  return { ...ts.parseJsonConfigFileContent(config.config, ts.sys, REPO_ROOT).options, noEmit: true };
}

/** A program over real files plus in-memory ones (for the checker's self-test). */
function buildProgram(files: string[], virtual: Map<string, string> = new Map()): ts.Program {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const realGetSourceFile = host.getSourceFile.bind(host);
  const realFileExists = host.fileExists.bind(host);
  const realReadFile = host.readFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const text = virtual.get(fileName);
    return text !== undefined ? ts.createSourceFile(fileName, text, languageVersion, true) : realGetSourceFile(fileName, languageVersion, onError, shouldCreate);
  };
  host.fileExists = (fileName) => virtual.has(fileName) || realFileExists(fileName);
  host.readFile = (fileName) => virtual.get(fileName) ?? realReadFile(fileName);
  return ts.createProgram([...files, ...virtual.keys()], options, host);
}

/** An array literal is checked element by element (`[]` has type never[], and is fine). */
function isStringArgumentList(checker: ts.TypeChecker, node: ts.Expression): boolean {
  if (ts.isArrayLiteralExpression(node)) {
    return node.elements.every((element) =>
      ts.isSpreadElement(element)
        ? isStringArray(checker, checker.getTypeAtLocation(element.expression))
        : (checker.getTypeAtLocation(element).flags & ts.TypeFlags.StringLike) !== 0,
    );
  }
  return isStringArray(checker, checker.getTypeAtLocation(node));
}

function isStringArray(checker: ts.TypeChecker, type: ts.Type): boolean {
  const candidates = type.isUnion() ? type.types : [type];
  return candidates.every((t) => {
    if (!checker.isArrayType(t) && !checker.isTupleType(t)) return false;
    const elements = checker.getTypeArguments(t as ts.TypeReference);
    return elements.length > 0 && elements.every((e) => (e.flags & ts.TypeFlags.StringLike) !== 0);
  });
}

function scan(program: ts.Program, file: string): Finding[] {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`${file} is not part of the program`);
  const checker = program.getTypeChecker();
  const findings: Finding[] = [];
  const report = (node: ts.Node, what: string): void => {
    findings.push({ file, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, what });
  };
  const execaNames = new Set<string>();
  const forbiddenNames = new Set<string>();

  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    const module = statement.moduleSpecifier.text;
    const named = statement.importClause?.namedBindings;
    const elements = named && ts.isNamedImports(named) ? named.elements : [];
    for (const element of elements) {
      const imported = (element.propertyName ?? element.name).text;
      const local = element.name.text;
      if (CHILD_PROCESS_MODULES.has(module) && SHELL_RUNNERS.has(imported)) report(element, `child_process.${imported} always runs a shell`);
      if (module === 'execa' && EXECA_RUNNERS.has(imported)) execaNames.add(local);
      if (module === 'execa' && EXECA_FORBIDDEN.has(imported)) {
        report(element, `execa's ${imported} parses a command string`);
        forbiddenNames.add(local);
      }
    }
    if (named && ts.isNamespaceImport(named) && (module === 'execa' || CHILD_PROCESS_MODULES.has(module))) {
      report(named, `namespace import of ${module} hides which runners are used`);
    }
  }

  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) {
      const name = node.name;
      if ((ts.isIdentifier(name) || ts.isStringLiteral(name)) && name.text === 'shell') {
        const value = ts.isPropertyAssignment(node) ? node.initializer : undefined;
        if (!value || value.kind !== ts.SyntaxKind.FalseKeyword) report(node, 'a `shell` option that is not false');
      }
    }
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      const text = node.text;
      if (SHELL_TEXT.some((pattern) => pattern.test(text))) report(node, `string naming a shell: ${JSON.stringify(text.slice(0, 60))}`);
    }
    if (ts.isTaggedTemplateExpression(node)) {
      const tag = node.tag.getText(source);
      const base = tag.split('(')[0] ?? tag;
      if (execaNames.has(base) || forbiddenNames.has(base) || base === '$') report(node, `execa template-string call ${tag}\`...\``);
    }
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) {
      const callee = node.expression.text;
      if (forbiddenNames.has(callee)) report(node, `${callee}() runs a command string`);
      if (execaNames.has(callee)) {
        const [file, args] = node.arguments;
        if (!file) {
          report(node, `${callee}() without a file`);
        } else if (ts.isStringLiteralLike(file) && /\s/.test(file.text)) {
          report(file, `${callee}() given a command line ${JSON.stringify(file.text)} instead of a file`);
        }
        if (!args) {
          report(node, `${callee}() without an argument array`);
        } else if (!isStringArgumentList(checker, args)) {
          report(args, `${callee}() argument list has type ${checker.typeToString(checker.getTypeAtLocation(args))}, not string[]`);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return findings;
}

function countExecaCalls(program: ts.Program, file: string): number {
  const source = program.getSourceFile(file);
  let count = 0;
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && PROCESS_RUNNERS.has(node.expression.text)) count++;
    ts.forEachChild(node, visit);
  };
  if (source) visit(source);
  return count;
}

describe('security: no shell anywhere in src/', () => {
  test('the checker finds every kind of violation in a bad file', () => {
    const bad = join(SRC, '__security_selftest__.ts');
    const text = [
      "import { exec, spawn } from 'node:child_process';",
      "import { execa, execaCommand, $ } from 'execa';",
      'const line = "ip link show";',
      'const list: string[] = ["a"];',
      "export async function f(cmd: string): Promise<void> {",
      "  spawn('ip', ['a'], { shell: true });",
      "  spawn('/bin/sh', ['-c', cmd]);",
      "  exec(cmd);",
      "  await execa('bash', ['-c', cmd]);",
      "  await execa('ip link show', []);",
      "  await execa('ip', cmd as unknown as number);",
      "  await execa(cmd);",
      "  await execa`ip ${cmd}`;",
      "  await $`ip ${cmd}`;",
      "  await execaCommand(line);",
      "  await execa('ip', list);",
      '}',
    ].join('\n');
    const program = buildProgram([], new Map([[bad, text]]));
    const findings = scan(program, bad).map((f) => `${f.line}: ${f.what}`);
    const expectOnLine = (line: number, pattern: RegExp): void => {
      assert.ok(findings.some((f) => f.startsWith(`${line}: `) && pattern.test(f)), `no finding ${pattern} on line ${line} in:\n${findings.join('\n')}`);
    };
    expectOnLine(1, /child_process\.exec/);
    expectOnLine(2, /execaCommand/);
    expectOnLine(2, /\$ parses/);
    expectOnLine(6, /shell. option/);
    expectOnLine(7, /naming a shell/);
    expectOnLine(9, /naming a shell/);
    expectOnLine(10, /command line/);
    expectOnLine(11, /not string\[\]/);
    expectOnLine(12, /without an argument array/);
    expectOnLine(13, /template-string/);
    expectOnLine(14, /template-string/);
    expectOnLine(15, /runs a command string/);
    assert.ok(!findings.some((f) => f.startsWith('16: ')), `a string[] argument list is fine, got:\n${findings.join('\n')}`);
  });

  test('src/**/*.ts runs every program with an argument array and no shell', () => {
    const files = sourceFiles(SRC);
    assert.ok(files.length > 10, `only ${files.length} source files found under ${SRC}`);
    const program = buildProgram(files);
    const findings = files.flatMap((file) => scan(program, file));
    assert.deepEqual(
      findings.map((f) => `${f.file.slice(REPO_ROOT.length + 1)}:${f.line}: ${f.what}`),
      [],
      'shell use found in src/',
    );
    const calls = files.reduce((sum, file) => sum + countExecaCalls(program, file), 0);
    assert.ok(calls >= 3, `expected the process call sites of src/util/spawn-capture.ts, src/cni/exec.ts and src/host/command.ts to be checked, saw ${calls}`);
  });
});
