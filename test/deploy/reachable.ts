/**
 * The AWS actions a deployed function can send, derived from the code with the TypeScript checker,
 * so the packaging test can hold each role to exactly what its function calls.
 *
 * 1. Each adapter method's SDK commands: the `new XCommand(...)` it constructs, with those of the
 *    class's own helpers it calls (`this.batchGet`, `this.#query`), closed transitively. A method
 *    that names an index (`IndexName: indexNames.x`) queries through that index only.
 * 2. The adapter methods the function can reach: every reference (call or not) in the files its
 *    entry imports, outside the adapters, to a member of an adapter class, of an interface an
 *    adapter class implements, or of a project interface an adapter class has every method of
 *    (a port flowing into a structural parameter such as a versioned store).
 * 3. Powertools' DynamoDB idempotency layer, when the function builds one: the commands its
 *    compiled source sends, on the idempotency table.
 *
 * Static, not recorded from test runs: it covers paths no test reaches (rollbacks, rare denials),
 * and it fails loudly (an SDK command sent outside an adapter method, an adapter class on no known
 * table) instead of under-counting.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..", "..");

/** One IAM action on one resource: `iot` for IoT actions, else a table's logical id (and index). */
export interface Grant {
  action: string;
  resource: string;
}

/** The DynamoDB table each table adapter class stores into (CloudFormation logical ids). */
export const TABLE_OF_ADAPTER: Record<string, string> = {
  DynamoAllowlist: "AllowlistTable",
  DynamoMappings: "MappingsTable",
  DynamoLots: "LotsTable",
  DynamoLedger: "LedgerTable",
  DynamoJobs: "JobsTable",
};

/** The job bucket's and queue's adapter classes, by the resource (logical id) they act on. */
export const RESOURCE_OF_ADAPTER: Record<string, string> = {
  S3JobFiles: "JobsBucket",
  SqsJobQueue: "JobsQueue",
};
/**
 * The IAM action each S3 command needs (presigning a command needs what sending it does): multipart
 * uploads are authorized by s3:PutObject, HeadObject by s3:GetObject.
 */
const S3_ACTIONS: Record<string, string> = {
  PutObjectCommand: "s3:PutObject",
  CreateMultipartUploadCommand: "s3:PutObject",
  UploadPartCommand: "s3:PutObject",
  CompleteMultipartUploadCommand: "s3:PutObject",
  GetObjectCommand: "s3:GetObject",
  HeadObjectCommand: "s3:GetObject",
  AbortMultipartUploadCommand: "s3:AbortMultipartUpload",
};
/** The abstract base every table adapter extends. */
const TABLE_BASE = "DynamoTable";
/** The IoT adapter class. */
const IOT_ADAPTER = "IotRegistryAdapter";
const IDEMPOTENCY_TABLE = "IdempotencyTable";

/** lib-dynamodb document commands by the DynamoDB operation they send. */
const DOCUMENT_COMMANDS: Record<string, string> = {
  GetCommand: "GetItem",
  PutCommand: "PutItem",
  UpdateCommand: "UpdateItem",
  DeleteCommand: "DeleteItem",
  QueryCommand: "Query",
  ScanCommand: "Scan",
  BatchGetCommand: "BatchGetItem",
  BatchWriteCommand: "BatchWriteItem",
};

/**
 * Transactions write items of more than one table; IAM authorizes TransactWriteItems by the action of
 * each item (`Update` items: dynamodb:UpdateItem) on each item's table. By adapter: the tables its
 * transactions write and the item actions they use (kept beside the adapter's code by the check below).
 */
const TRANSACTION_GRANTS: Record<string, { actions: string[]; tables: string[] }> = {
  DynamoLots: { actions: ["UpdateItem"], tables: ["LotsTable", "AllowlistTable"] },
};
const TRANSACTION_COMMAND = "TransactWriteCommand";

/** The operation a command class sends (`GetCommand` -> `GetItem`, `GetItemCommand` -> `GetItem`). */
const operationOf = (command: string): string =>
  DOCUMENT_COMMANDS[command] ?? command.replace(/Command$/, "");

interface AdapterMethod {
  commands: Set<string>;
  indexes: Set<string>;
  helpers: Set<string>;
}

interface AdapterClass {
  name: string;
  base: string | undefined;
  /** Interfaces named in `implements`, with the ones they extend. */
  implements: Set<ts.Symbol>;
  methods: Map<string, AdapterMethod>;
}

/** The compiler options of tsconfig.json. */
function compilerOptions(): ts.CompilerOptions {
  const path = join(root, "tsconfig.json");
  const config = ts.readConfigFile(path, (file) => ts.sys.readFile(file));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root).options;
}

const isProjectFile = (file: ts.SourceFile): boolean =>
  !file.isDeclarationFile && !file.fileName.includes("/node_modules/");

const memberName = (name: ts.PropertyName | ts.MemberName): string =>
  ts.isPrivateIdentifier(name) ? name.text : name.getText();

/** The grants each function needs, by its entry file (relative to the repository root). */
export function grantsOf(entries: string[]): Map<string, Grant[]> {
  const program = ts.createProgram(
    entries.map((entry) => join(root, entry)),
    compilerOptions(),
  );
  return new Map(entries.map((entry) => [entry, grantsOfEntry(program, entry)]));
}

/** The grants one entry's function needs, in a program holding it. */
function grantsOfEntry(program: ts.Program, entry: string): Grant[] {
  const checker = program.getTypeChecker();
  const files = program.getSourceFiles().filter(isProjectFile);
  const isAdapterFile = (file: ts.SourceFile) => relative(root, file.fileName).startsWith("adapters/");

  const adapters = new Map<string, AdapterClass>();
  /** Adapter functions outside classes that send commands (table setup for local mode). */
  const adapterFunctions = new Map<ts.Symbol | string, string>();
  const strays: string[] = [];
  for (const file of files) {
    visit(file, (node) => {
      if (ts.isClassDeclaration(node) && node.name !== undefined && isAdapterFile(file)) {
        adapters.set(node.name.text, readAdapter(node, checker));
        return false;
      }
      if (ts.isFunctionDeclaration(node) && node.name !== undefined && isAdapterFile(file)) {
        const sends: string[] = [];
        visit(node, (inner) => {
          if (ts.isNewExpression(inner) && /Command$/.test(inner.expression.getText()))
            sends.push(inner.expression.getText());
          return true;
        });
        const symbol = checker.getSymbolAtLocation(node.name);
        if (sends.length > 0 && symbol !== undefined) adapterFunctions.set(symbol, node.name.text);
        return false;
      }
      if (ts.isNewExpression(node) && /Command$/.test(node.expression.getText())) {
        strays.push(`${relative(root, file.fileName)}: ${node.getText().slice(0, 60)}`);
      }
      return true;
    });
  }
  if (strays.length > 0)
    throw new Error(`SDK commands sent outside an adapter method:\n${strays.join("\n")}`);
  for (const adapter of adapters.values()) {
    if (adapter.base === TABLE_BASE && TABLE_OF_ADAPTER[adapter.name] === undefined)
      throw new Error(`table adapter ${adapter.name} is not in TABLE_OF_ADAPTER`);
  }

  const reached = new Set<string>(); // `${adapter}.${method}`
  const reach = (adapter: string, method: string) => {
    if (adapters.get(adapter)?.methods.has(method)) reached.add(`${adapter}.${method}`);
  };
  let buildsIdempotencyLayer = false;
  const unsupported = new Set<string>();
  const implementedByAny = (symbol: ts.Symbol | undefined) =>
    symbol !== undefined && [...adapters.values()].some((adapter) => adapter.implements.has(symbol));
  for (const unit of reachableUnits(program, checker, join(root, entry))) {
    if (isAdapterFile(unit.getSourceFile())) continue;
    visit(unit, (node) => {
      if (
        ts.isIdentifier(node) &&
        node.text === "DynamoDBPersistenceLayer" &&
        ts.isNewExpression(node.parent)
      ) {
        buildsIdempotencyLayer = true;
      }
      if (ts.isIdentifier(node)) {
        const name = adapterFunctions.get(resolved(checker.getSymbolAtLocation(node), checker) ?? node.text);
        if (name !== undefined)
          unsupported.add(`${relative(root, unit.getSourceFile().fileName)} uses ${name}`);
      }
      if (!ts.isPropertyAccessExpression(node)) return true;
      const name = node.name.text;
      for (const declaration of checker.getSymbolAtLocation(node.name)?.declarations ?? []) {
        const container = declaration.parent;
        if (ts.isClassDeclaration(container) && container.name && adapters.has(container.name.text)) {
          for (const adapter of withSubclasses(container.name.text, adapters)) reach(adapter, name);
        } else if (ts.isInterfaceDeclaration(container) || ts.isTypeLiteralNode(container)) {
          const symbol = ts.isInterfaceDeclaration(container)
            ? checker.getSymbolAtLocation(container.name)
            : undefined;
          // A port: the adapters implementing it. Another project type: the adapters that fit it by name.
          const structural = !implementedByAny(symbol) && isProjectFile(container.getSourceFile());
          for (const adapter of adapters.values()) {
            const nominal = symbol !== undefined && adapter.implements.has(symbol);
            if (nominal || (structural && hasEveryMethod(adapter, container, adapters)))
              reach(adapter.name, name);
          }
        }
      }
      return true;
    });
  }

  if (unsupported.size > 0)
    throw new Error(
      `commands outside a table or IoT adapter class are reached:\n${[...unsupported].join("\n")}`,
    );
  const grants = new Map<string, Grant>();
  const grant = (action: string, resource: string) =>
    grants.set(`${action} ${resource}`, { action, resource });
  for (const key of reached) {
    const [adapterName = "", method = ""] = key.split(".");
    const adapter = adapters.get(adapterName);
    if (adapter === undefined) continue;
    const { commands, indexes } = closure(adapter, method, adapters);
    if (adapterName === IOT_ADAPTER) {
      for (const command of commands) grant(`iot:${operationOf(command)}`, "iot");
      continue;
    }
    const resource = RESOURCE_OF_ADAPTER[adapterName];
    if (resource !== undefined) {
      for (const command of commands) {
        const action = resource === "JobsBucket" ? S3_ACTIONS[command] : `sqs:${operationOf(command)}`;
        if (action === undefined) throw new Error(`no IAM action known for ${command}`);
        grant(action, resource);
      }
      continue;
    }
    const table = TABLE_OF_ADAPTER[adapterName];
    if (table === undefined) throw new Error(`adapter ${adapterName} stores into no known table`);
    for (const command of commands) {
      if (command === TRANSACTION_COMMAND) {
        const transaction = TRANSACTION_GRANTS[adapterName];
        if (transaction === undefined)
          throw new Error(`${adapterName} sends transactions: name their tables in TRANSACTION_GRANTS`);
        for (const item of transaction.actions)
          for (const written of transaction.tables) grant(`dynamodb:${item}`, written);
        continue;
      }
      const action = `dynamodb:${operationOf(command)}`;
      if (action === "dynamodb:Query" && indexes.size > 0) {
        for (const index of indexes) grant(action, `${table}/index/${index}`);
      } else grant(action, table);
    }
  }
  if (buildsIdempotencyLayer) {
    for (const command of idempotencyLayerCommands())
      grant(`dynamodb:${operationOf(command)}`, IDEMPOTENCY_TABLE);
  }
  return [...grants.values()].sort((a, b) =>
    `${a.resource} ${a.action}`.localeCompare(`${b.resource} ${b.action}`),
  );
}

/** The symbol an import alias stands for, or the symbol itself. */
function resolved(symbol: ts.Symbol | undefined, checker: ts.TypeChecker): ts.Symbol | undefined {
  return symbol !== undefined && symbol.flags & ts.SymbolFlags.Alias
    ? checker.getAliasedSymbol(symbol)
    : symbol;
}

/** The top-level statement of the file that holds `node`. */
function topLevel(node: ts.Node): ts.Statement | undefined {
  let at: ts.Node = node;
  while (at.parent !== undefined && !ts.isSourceFile(at.parent)) at = at.parent;
  return at.parent !== undefined && ts.isSourceFile(at.parent) ? (at as ts.Statement) : undefined;
}

/** Whether a top-level statement runs code when its module loads (a call or `new` outside a function). */
function runsOnLoad(statement: ts.Statement): boolean {
  if (ts.isImportDeclaration(statement) || ts.isFunctionDeclaration(statement)) return false;
  if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) return false;
  let runs = false;
  visit(statement, (node) => {
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return false;
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) runs = true;
    return !runs;
  });
  return runs;
}

/** The project files the entry imports, transitively (its bundle's own code). */
function importClosure(program: ts.Program, entry: string): ts.SourceFile[] {
  const found = new Map<string, ts.SourceFile>();
  const pending = [program.getSourceFile(entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (found.has(file.fileName) || !isProjectFile(file)) continue;
    found.set(file.fileName, file);
    const from = file;
    visit(file, (node) => {
      const specifier =
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined
          ? node.moduleSpecifier
          : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword
            ? node.arguments[0]
            : undefined;
      if (specifier !== undefined && ts.isStringLiteral(specifier)) {
        const target = ts.resolveModuleName(
          specifier.text,
          from.fileName,
          program.getCompilerOptions(),
          ts.sys,
        ).resolvedModule;
        if (target !== undefined) pending.push(program.getSourceFile(target.resolvedFileName));
      }
      return true;
    });
  }
  if (found.size === 0) throw new Error(`entry ${entry} is not in the program`);
  return [...found.values()];
}

/**
 * The project's top-level statements the entry can run: the entry file's, those that run when a
 * module loads, and, transitively, every top-level declaration an identifier in a reached one refers to.
 */
function reachableUnits(program: ts.Program, checker: ts.TypeChecker, entry: string): ts.Statement[] {
  const reached = new Set<ts.Statement>();
  const pending: ts.Statement[] = [];
  const add = (statement: ts.Statement | undefined) => {
    if (statement === undefined || reached.has(statement)) return;
    reached.add(statement);
    pending.push(statement);
  };
  for (const file of importClosure(program, entry)) {
    for (const statement of file.statements)
      if (file.fileName === entry || runsOnLoad(statement)) add(statement);
  }
  for (let unit = pending.pop(); unit !== undefined; unit = pending.pop()) {
    visit(unit, (node) => {
      if (!ts.isIdentifier(node)) return true;
      for (const declaration of resolved(checker.getSymbolAtLocation(node), checker)?.declarations ?? []) {
        if (isProjectFile(declaration.getSourceFile())) add(topLevel(declaration));
      }
      return true;
    });
  }
  return [...reached];
}

/** Walks `node`'s subtree; `enter` returns false to skip a node's children. */
function visit(node: ts.Node, enter: (node: ts.Node) => boolean): void {
  if (enter(node)) ts.forEachChild(node, (child) => visit(child, enter));
}

/** An adapter class: its base, interfaces and, per method, the commands, indexes and own helpers it uses. */
function readAdapter(node: ts.ClassDeclaration, checker: ts.TypeChecker): AdapterClass {
  let base: string | undefined;
  const implemented = new Set<ts.Symbol>();
  for (const clause of node.heritageClauses ?? []) {
    for (const type of clause.types) {
      if (clause.token === ts.SyntaxKind.ExtendsKeyword) base = type.expression.getText();
      else addInterface(checker.getSymbolAtLocation(type.expression), implemented, checker);
    }
  }
  const methods = new Map<string, AdapterMethod>();
  for (const member of node.members) {
    if (!(ts.isMethodDeclaration(member) || ts.isConstructorDeclaration(member)) || member.body === undefined)
      continue;
    const method: AdapterMethod = { commands: new Set(), indexes: new Set(), helpers: new Set() };
    visit(member.body, (inner) => {
      if (ts.isNewExpression(inner) && /Command$/.test(inner.expression.getText())) {
        method.commands.add(inner.expression.getText());
      }
      if (ts.isPropertyAccessExpression(inner) && inner.expression.kind === ts.SyntaxKind.ThisKeyword) {
        method.helpers.add(memberName(inner.name));
      }
      if (
        ts.isPropertyAssignment(inner) &&
        memberName(inner.name) === "IndexName" &&
        ts.isPropertyAccessExpression(inner.initializer)
      ) {
        const type = checker.getTypeAtLocation(inner.initializer);
        if (!type.isStringLiteral()) throw new Error(`IndexName is not a known index: ${inner.getText()}`);
        method.indexes.add(type.value);
      }
      return true;
    });
    methods.set(ts.isConstructorDeclaration(member) ? "constructor" : memberName(member.name), method);
  }
  return { name: node.name?.text ?? "", base, implements: implemented, methods };
}

/** Adds an interface and every interface it extends. */
function addInterface(symbol: ts.Symbol | undefined, into: Set<ts.Symbol>, checker: ts.TypeChecker): void {
  if (symbol === undefined || into.has(symbol)) return;
  const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  into.add(resolved);
  for (const declaration of resolved.declarations ?? []) {
    if (!ts.isInterfaceDeclaration(declaration)) continue;
    for (const clause of declaration.heritageClauses ?? []) {
      for (const type of clause.types)
        addInterface(checker.getSymbolAtLocation(type.expression), into, checker);
    }
  }
}

/** The adapter and the adapter classes extending it, transitively. */
function withSubclasses(name: string, adapters: Map<string, AdapterClass>): string[] {
  const found = [name];
  for (const adapter of adapters.values()) {
    if (adapter.base === name) found.push(...withSubclasses(adapter.name, adapters));
  }
  return found;
}

/** A method of the adapter or of the adapter classes it extends. */
function methodOf(adapter: AdapterClass, name: string, adapters: Map<string, AdapterClass>) {
  for (let at: AdapterClass | undefined = adapter; at !== undefined; ) {
    const method = at.methods.get(name);
    if (method !== undefined) return method;
    at = at.base === undefined ? undefined : adapters.get(at.base);
  }
  return undefined;
}

/** Whether the adapter has a method for every method signature of a project interface or type literal. */
function hasEveryMethod(
  adapter: AdapterClass,
  container: ts.InterfaceDeclaration | ts.TypeLiteralNode,
  adapters: Map<string, AdapterClass>,
): boolean {
  const names = container.members.filter(ts.isMethodSignature).map((m) => memberName(m.name));
  return names.length > 0 && names.every((name) => methodOf(adapter, name, adapters) !== undefined);
}

/** The commands and indexes of a method with those of the helpers it calls, transitively. */
function closure(adapter: AdapterClass, name: string, adapters: Map<string, AdapterClass>) {
  const commands = new Set<string>();
  const indexes = new Set<string>();
  const seen = new Set<string>();
  const walk = (method: string) => {
    if (seen.has(method)) return;
    seen.add(method);
    const found = methodOf(adapter, method, adapters);
    if (found === undefined) return;
    for (const command of found.commands) commands.add(command);
    for (const index of found.indexes) indexes.add(index);
    for (const helper of found.helpers) walk(helper);
  };
  walk(name);
  return { commands, indexes };
}

/** The commands Powertools' DynamoDB persistence layer sends, read from its compiled source. */
export function idempotencyLayerCommands(): string[] {
  const require = createRequire(join(root, "package.json"));
  const source = readFileSync(require.resolve("@aws-lambda-powertools/idempotency/dynamodb"), "utf8");
  const commands = [
    ...new Set([...source.matchAll(/new (?:[\w$]+\.)?(\w+Command)\(/g)].map((m) => m[1] ?? "")),
  ];
  if (commands.length === 0) throw new Error("found no command in Powertools' DynamoDB persistence layer");
  return commands.sort();
}
