import winston from "winston";

export type Logger = winston.Logger;

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** "key=value" pairs of a text line; values with spaces or quotes are JSON-quoted. */
function textFields(meta: Record<string, unknown>): string {
  return Object.entries(meta)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const text = typeof v === "string" ? v : JSON.stringify(v);
      return `${k}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
    })
    .join(" ");
}

/**
 * Logs on stderr, one line per entry, with fields that name the component (and the object, node and
 * round where there is one): JSON objects by default, or `time LEVEL message key=value...` with "text".
 */
export function createLogger(
  component: string,
  level = process.env.FEDBACKUP_LOG_LEVEL ?? "info",
  format: LogFormat = process.env.FEDBACKUP_LOG_FORMAT === "text" ? "text" : "json",
): Logger {
  const render =
    format === "text"
      ? winston.format.printf((info) => {
          const { timestamp, level: lvl, message, stack, ...meta } = info;
          const fields = textFields(meta);
          const line = `${String(timestamp)} ${lvl.toUpperCase()} ${String(message)}${fields ? ` ${fields}` : ""}`;
          return typeof stack === "string" ? `${line}\n${stack}` : line;
        })
      : winston.format.json();
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), render),
    defaultMeta: { component },
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}
