// Starts `cnndsl lsp` for .cnn files and for the YAML files matched by the cnndsl.yamlFiles setting.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("cnndsl");
  const [command, ...args] = config.get("server.command", ["cnndsl", "lsp"]);
  const documentSelector = [
    { scheme: "file", language: "cnn" },
    { scheme: "file", language: "yaml", pattern: config.get("yamlFiles", "**/specs/**/*.{yaml,yml}") },
  ];
  client = new LanguageClient("cnndsl", "cnndsl language server", { command, args }, { documentSelector });
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
