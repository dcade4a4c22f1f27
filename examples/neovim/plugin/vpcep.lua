-- examples/neovim/plugin/vpcep.lua: :VpcepAccept SERVICE ENDPOINT and
-- :VpcepReject SERVICE ENDPOINT. Each returns at once; the result arrives as a
-- message, in vim.g.vpcep_last, and as the User autocommand VpcepDone.
if vim.g.loaded_vpcep then return end
vim.g.loaded_vpcep = true

local vpcep_nvim = require "vpcep_nvim"
vim.api.nvim_create_user_command("VpcepAccept", vpcep_nvim.command("receive"), { nargs = "+" })
vim.api.nvim_create_user_command("VpcepReject", vpcep_nvim.command("reject"), { nargs = "+" })
