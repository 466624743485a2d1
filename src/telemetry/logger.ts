import winston from "winston";

export type Logger = winston.Logger;

/** JSON logs on stderr, one object per line, with fields that name the component. */
export function createLogger(component: string, level = process.env.FEDBACKUP_LOG_LEVEL ?? "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    defaultMeta: { component },
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}
