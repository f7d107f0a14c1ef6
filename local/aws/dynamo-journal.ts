import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

/** A DynamoDB item in its wire form (attribute name -> typed value). */
type Item = Record<string, Record<string, unknown>>;

/** An item a transaction names, as it was before the transaction (`image` absent: the item did not exist). */
export interface ItemImage {
  tableName: string;
  key: Item;
  image?: Item | undefined;
}

/** The images of the items of the transaction under way, on disk, replaced whole by a rename. */
export class TransactionJournal {
  constructor(readonly path: string) {}

  record(images: ItemImage[]): void {
    writeFileSync(`${this.path}.tmp`, JSON.stringify(images));
    renameSync(`${this.path}.tmp`, this.path);
  }

  clear(): void {
    rmSync(this.path, { force: true });
  }

  /** The images a killed process left, or undefined when it left none. */
  read(): ItemImage[] | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    return JSON.parse(text) as ItemImage[];
  }
}
