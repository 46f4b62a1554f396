// Package postgres provides a [convoy.Store] on PostgreSQL.
package postgres
